"""How much query text the guard will read: a size limit and a nesting limit.

The guard's work grows with the text (about 1 s per 64 KB at worst on a 2-core
machine, holding the GIL), and sqlglot's parser recurses some twenty Python
frames per level of nesting, so deep nesting would end in RecursionError. Both
are refused up front with a rule of their own, before anything reads the text.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot.tokens import Token, TokenType

from .errors import InvalidQuery

__all__ = ["MAX_NESTING", "MAX_QUERY_BYTES", "check_nesting", "check_size", "too_complex"]

MAX_QUERY_BYTES = 256 * 1024  # the default of --max-query-kb
# Parenthesis levels the guard reads: about 40 fit in Python's default recursion
# limit, less whatever the caller's stack already holds.
MAX_NESTING = 32

_FLAG = "--max-query-kb"


def check_size(sql: str, max_bytes: int) -> None:
    """Refuse text over `max_bytes` UTF-8 bytes, without reading it any further."""
    # A character is at least one byte: a text this long is over without encoding it.
    if len(sql) > max_bytes:
        size = f"{len(sql):,} characters"
    else:
        encoded = len(sql.encode("utf-8", "surrogatepass"))
        if encoded <= max_bytes:
            return
        size = f"{encoded:,} bytes"
    raise InvalidQuery(
        "query-size",
        f"the query text is {size}; the limit is {max_bytes:,} bytes "
        f"({max_bytes / 1024:g} KB, {_FLAG}); send a shorter query",
    )


def check_nesting(tokens: Iterable[Token]) -> None:
    """Refuse parentheses nested deeper than MAX_NESTING levels."""
    depth = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_NESTING:
                raise InvalidQuery(
                    "too-complex",
                    f"parentheses nest more than {MAX_NESTING} levels deep (at line "
                    f"{token.line}, column {token.col}); write the query with less nesting, "
                    "e.g. with a WITH clause",
                )
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1


def too_complex() -> InvalidQuery:
    """For nesting without parentheses (NOT NOT …, - - …, CASE in CASE) that the
    parser could not follow: the same rule, said without a count."""
    return InvalidQuery(
        "too-complex",
        "the query nests too deeply for the guard to read; write it with less nesting",
    )
