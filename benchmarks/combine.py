"""One report from parts measured in separate runs: `python -m benchmarks.combine`.

A full run takes long; when one part has to be run again (a part that failed,
or a change to one section), its results.json and the others' can be joined
instead of measuring everything again. Each part keeps its own date and plan in
`meta.parts`, and the combined plan is the one each part was measured with.

    python -m benchmarks.combine /tmp/full/results.json /tmp/live/results.json \
        --out benchmarks/results [--save-baseline benchmarks/baseline.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .baseline import save_baseline
from .report import write_json, write_markdown
from .run import PARTS
from .targets import evaluate

__all__ = ["combine"]

# The plan fields each part is measured with; the rest are shared.
_PART_FIELDS = {
    "query": ("query_sizes", "big_query_runs", "pandas_max_rows"),
    "ingest": ("ingest_sizes", "seed_sample", "nats_events", "ingest_stored"),
    "live": ("live_subscribers", "live_stalled_with", "live_storm", "live_seconds"),
}


def combine(runs: list[dict]) -> dict:
    """Later runs' backends replace earlier ones' within a part; targets judged on the result."""
    combined: dict = {"meta": dict(runs[0]["meta"])}
    combined["meta"]["parts"] = {}
    plan = dict(combined["meta"]["plan"])
    for run in runs:
        for part in PARTS:
            if part in run:
                # By backend: a part re-run on one backend keeps the other's figures.
                combined.setdefault(part, {}).update(run[part])
                meta = run["meta"]
                for backend in run[part]:
                    key = f"{part}/{backend}"
                    # A combined report joined again keeps each part's own date and plan.
                    earlier = meta.get("parts", {}).get(key)
                    combined["meta"]["parts"][key] = earlier or {
                        "date": meta["date"],
                        "plan": meta["plan"],
                    }
                for name in _PART_FIELDS[part]:
                    if name in meta["plan"]:
                        plan[name] = meta["plan"][name]
    combined["meta"]["plan"] = plan
    combined["meta"]["elapsed_s"] = sum(r["meta"].get("elapsed_s") or 0 for r in runs)
    combined["targets"] = evaluate(combined)
    return combined


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.combine", description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="results.json files, in order")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--save-baseline", type=Path, default=None)
    args = parser.parse_args(argv)
    from .plots import write_plots  # matplotlib: the bench extra, which combine() needs not

    combined = combine([json.loads(p.read_text()) for p in args.results])
    args.out.mkdir(parents=True, exist_ok=True)
    combined["plots"] = write_plots(combined, args.out)
    write_json(combined, args.out / "results.json")
    write_markdown(combined, args.out / "results.md")
    if args.save_baseline is not None:
        save_baseline(combined, args.save_baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
