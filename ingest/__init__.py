"""The write path: validate, dedupe, append raw events, keep aggregates exact, publish."""

__all__: list[str] = []
