"""A committed baseline of the targets' figures, and a run compared against it.

`benchmarks/baseline.json` keeps, per plan (quick, full), each target's value and
the spread its rounds measured. A later run of the same plan is compared target
by target: the ratio of the new value to the old, flagged when the change is
larger than what the rounds themselves scatter by, i.e. when the two runs'
min-max ranges do not overlap. A figure measured once (a percentile over one
live run, a peak RSS) has no spread: its change is shown, never flagged, and the
table says so rather than guess a tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["compare", "format_comparison", "load_baseline", "save_baseline"]


def _entry(target: dict) -> dict:
    spread = target.get("spread") or {}
    entry = {"value": target["value"], "goal": target["goal"], "met": target["met"]}
    if "min" in spread and "max" in spread:
        entry["range"] = [spread["min"], spread["max"]]
    return entry


def save_baseline(results: dict, path: Path) -> None:
    """Record this run's targets as the baseline of its plan, keeping the other plan's."""
    stored = json.loads(path.read_text()) if path.exists() else {}
    meta = results["meta"]
    stored[meta["mode"]] = {
        "date": meta["date"],
        "machine": meta["machine"],
        "plan": meta["plan"],
        "targets": {t["name"]: _entry(t) for t in results["targets"]},
    }
    path.write_text(json.dumps(stored, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def _verdict(now: dict, then: dict) -> tuple[float | None, str]:
    if now["value"] is None or then["value"] is None:
        return None, "not measured" if now["value"] is None else "new"
    ratio = now["value"] / then["value"] if then["value"] else None
    if "range" not in now or "range" not in then:
        return ratio, "no spread"
    (low, high), (old_low, old_high) = now["range"], then["range"]
    if low > old_high:
        return ratio, "HIGHER"
    if high < old_low:
        return ratio, "LOWER"
    return ratio, "within spread"


def load_baseline(path: Path, mode: str, plan: dict) -> dict:
    """The baseline of this plan; ValueError when there is none to compare with."""
    stored = json.loads(path.read_text()).get(mode)
    if stored is None:
        raise ValueError(f"{path} holds no {mode} run to compare with")
    if stored.get("plan") != json.loads(json.dumps(plan)):  # tuples read back as lists
        # A scaled or resized run measures other sizes: its ratios are not comparable.
        raise ValueError(f"this run's plan differs from the {mode} baseline's in {path}")
    return stored


def compare(results: dict, stored: dict) -> list[dict]:
    """One row per target of this run: its value, the baseline's, their ratio, the verdict."""
    rows = []
    for target in results["targets"]:
        now, then = _entry(target), stored["targets"].get(target["name"])
        if then is None:
            rows.append({"name": target["name"], "now": now["value"], "verdict": "not in baseline"})
            continue
        ratio, verdict = _verdict(now, then)
        rows.append(
            {
                "name": target["name"],
                "now": now["value"],
                "then": then["value"],
                "ratio": ratio,
                "verdict": verdict,
            }
        )
    return rows


def format_comparison(rows: list[dict], baseline_date: str) -> str:
    lines = [
        f"against the baseline of {baseline_date} (flagged: the two runs' min-max do not overlap)"
    ]
    for row in rows:
        ratio = "" if row.get("ratio") is None else f" {row['ratio']:.2f}x"
        then = "" if row.get("then") is None else f" (was {row['then']:,.2f})"
        now = "-" if row["now"] is None else f"{row['now']:,.2f}"
        lines.append(f"  {row['verdict']:<15} {row['name']}: {now}{then}{ratio}")
    return "\n".join(lines)
