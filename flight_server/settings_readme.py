"""README's configuration table, rendered from the settings declarations.

`python -m flightdeck.flight_server.settings_readme` prints it; a test fails when
README's copy differs.
"""

from __future__ import annotations

from .settings import Option, flag, options, shown_default

__all__ = ["readme_table"]


def readme_table() -> str:
    rows = ["| flag | environment | default | what it sets |", "|---|---|---|---|"]
    for name, o, default in options():
        meaning = f"{o.help}. {o.note}".strip() if o.note else o.help
        rows.append(f"| `{flag(name)}` | `{o.env}` | {_default(o, default)} | {meaning} |")
    return "\n".join(rows) + "\n"


def _default(o: Option, default: object) -> str:
    """A value in code type, with its unit; what an unset option does, in words."""
    if default is None or default == () or isinstance(default, bool):
        return shown_default(o, default)
    return f"`{default}` {o.unit}".strip()


if __name__ == "__main__":
    print(readme_table(), end="")
