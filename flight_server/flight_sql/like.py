"""SQL LIKE for the catalog filters of Flight SQL, matched without backtracking.

Flight SQL's GetTables and GetDbSchemas filters are LIKE patterns: `%` matches
any run of characters, `_` any one, and `\\` makes the next character literal
(a trailing `\\` stands for itself). A client chooses the pattern, so matching
must not backtrack: a regular expression built from `%%%%…x` took minutes.

Here the pattern is split at its `%`s into segments of literals and `_`. The
first segment must match at the start, the last at the end, and each one in
between at its leftmost place after the previous: taking the leftmost place
never loses a match, since it leaves the most room for what follows. Each
segment is compared at most once per position, so a match costs at most
len(value) x len(pattern) character comparisons, with no exponential case.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LikePattern", "like"]

# A segment is a tuple of characters, where None stands for `_` (any one character).
Segment = tuple[str | None, ...]


@dataclass(frozen=True)
class LikePattern:
    segments: tuple[Segment, ...]  # the pattern split at `%`; one segment: no `%` at all

    @classmethod
    def parse(cls, pattern: str) -> LikePattern:
        segments: list[Segment] = []
        current: list[str | None] = []
        chars = iter(pattern)
        for char in chars:
            if char == "\\":
                current.append(next(chars, "\\"))
            elif char == "%":
                segments.append(tuple(current))
                current = []
            elif char == "_":
                current.append(None)
            else:
                current.append(char)
        segments.append(tuple(current))
        return cls(tuple(segments))

    def matches(self, value: str) -> bool:
        if len(self.segments) == 1:  # no `%`: the one segment must cover the whole value
            only = self.segments[0]
            return len(only) == len(value) and _fits(only, value, 0)
        first, *middle, last = self.segments
        end = len(value) - len(last)
        if len(first) > end or not _fits(first, value, 0) or not _fits(last, value, end):
            return False
        position = len(first)
        for segment in middle:
            found = _find(segment, value, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True


def like(pattern: str | None, value: str) -> bool:
    """Does `value` match the LIKE `pattern`? None (no filter) matches everything."""
    return pattern is None or LikePattern.parse(pattern).matches(value)


def _fits(segment: Segment, value: str, start: int) -> bool:
    return all(want is None or want == value[start + i] for i, want in enumerate(segment))


def _find(segment: Segment, value: str, start: int, end: int) -> int:
    """The leftmost place at or after `start` where `segment` fits, ending by `end`; or -1."""
    for position in range(start, end - len(segment) + 1):
        if _fits(segment, value, position):
            return position
    return -1
