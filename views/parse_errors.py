"""sqlglot's parse errors in SQL words.

sqlglot reports a clause or operator left without its operand as "Required keyword:
'this' missing for <class 'sqlglot.expressions.query.Where'>" and puts token reprs
into other messages; a client should read what is wrong with its SQL instead.
"""

from __future__ import annotations

import re

from sqlglot import exp

__all__ = ["describe_parse_error"]

# sqlglot puts the repr of the token it choked on into its error messages.
_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: [^>]*>")
_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>")

# What each incomplete clause or construct lacks, by sqlglot's class name.
_NEEDS = {
    "Where": "the WHERE clause needs a condition",
    "Having": "the HAVING clause needs a condition",
    "Qualify": "the QUALIFY clause needs a condition",
    "Order": "ORDER BY needs at least one expression",
    "Group": "GROUP BY needs at least one expression",
    "Limit": "LIMIT needs a number",
    "Offset": "OFFSET needs a number",
    "Fetch": "FETCH needs a number",
    "Between": "BETWEEN needs both bounds: BETWEEN low AND high",
    "In": "IN needs a list of values or a query",
    "CTE": "each WITH query needs a query in its parentheses",
    "Cast": "CAST needs a value and a type: CAST(value AS type)",
    "Not": "NOT needs a condition after it",
    "Neg": "'-' needs a value after it",
    "Join": "the JOIN needs a table",
    "Alias": "AS needs a name",
    "Paren": "the parentheses are empty",
}


def describe_parse_error(description: str) -> str:
    """`description` (one of a ParseError's errors) without sqlglot's internals."""
    missing = _MISSING.search(description)
    if missing:
        return _needs(missing[1])
    return _TOKEN_REPR.sub(_token_words, description)


def _needs(class_name: str) -> str:
    if class_name in _NEEDS:
        return _NEEDS[class_name]
    node = getattr(exp, class_name, None)
    if isinstance(node, type) and issubclass(node, exp.Binary):
        return "an operator needs a value on each side"
    if isinstance(node, type) and issubclass(node, exp.Unary):
        return "an operator needs a value after it"
    return "the query is incomplete: a part of it is missing"


def _token_words(match: re.Match[str]) -> str:
    return "the end of the query" if match[1] == "SENTINEL" else repr(match[2])
