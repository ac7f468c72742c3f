"""The targets of issue 7, judged from the figures: reported as met or missed, never asserted."""

from __future__ import annotations

from .live_targets import live_targets
from .measure import paired_ratio, summary
from .query_targets import query_targets
from .target import target as _target

__all__ = ["evaluate"]


def _largest(entries: dict) -> tuple[int, dict] | None:
    if not entries:
        return None
    size = max(int(s) for s in entries)
    return size, entries[str(size)]


def _rows(n: int) -> str:
    return f"{n / 1e6:g} M rows" if n >= 1_000_000 else f"{n / 1e3:g} k rows"


def evaluate(results: dict) -> list[dict]:
    out: list[dict] = []
    out += query_targets(results.get("query", {}))
    ingest = results.get("ingest", {})
    for backend, entry in ingest.items():
        largest = _largest(entry.get("doput_vs_size", {}))
        if largest is not None:
            size, sized = largest
            t = sized["times_s"]
            at = _rows(size)
            ratio = paired_ratio(t["doput"], t["raw_adbc_ingest"])
            out.append(
                _target(
                    f"DoPut ≥ 0.5x raw adbc_ingest ({backend}, {at} per put, "
                    f"{sized.get('stored_before', 0):,} stored)",
                    ratio["median"],
                    ">=",
                    0.5,
                    backend=backend,
                    rows=size,
                    spread=ratio,
                )
            )
            if "seed_worker" in t:
                # Rates, not times: the seed worker ingests a smaller sample each round.
                sample = sized["seed_sample"]
                speeds = [
                    (size / a) / (sample / b)
                    for a, b in zip(t["doput"], t["seed_worker"], strict=True)
                ]
                ratio = summary(speeds)
                out.append(
                    _target(
                        f"DoPut ≥ 50x seed-style worker ({backend}, {at} vs {sample} events)",
                        ratio["median"],
                        ">=",
                        50.0,
                        backend=backend,
                        spread=ratio,
                    )
                )
        out += _growth_targets(backend, entry)
    out += live_targets(results.get("live", {}))
    return out


_FULL_STORED = 5_000_000  # the "a store holding 5 M events"


def _stored_note(step: int) -> str:
    """By the plan's step, not the count: resent events the stream carries are
    deduplicated, so a 5 M-event step stores about 1 % fewer."""
    return "" if step >= _FULL_STORED else "5 M events stored in the full run"


def _growth_targets(backend: str, entry: dict) -> list[dict]:
    """Ingest as the store grows: the first step is the empty store, the last the fullest."""
    growth = entry.get("growth") or {}
    if not growth:
        return []
    steps = [growth[k] for k in sorted(growth, key=int)]
    empty, full = steps[0], steps[-1]
    stored = full["stored_before"]
    step = max(int(k) for k in growth)
    at = f"{_rows(stored).replace(' rows', '')} events stored"
    t = full["times_s"]
    ratio = paired_ratio(t["doput"], t["raw_adbc_ingest"])
    out = [
        _target(
            f"DoPut ≥ 0.5x raw adbc_ingest, realistic stream ({backend}, {at})",
            ratio["median"],
            ">=",
            0.5,
            backend=backend,
            stored=stored,
            spread=ratio,
            note=_stored_note(step),
        )
    ]
    # Not paired: the two steps run minutes apart. Medians of rows/s.
    slow = full["rates"]["doput"]["rows_per_s"]["median"]
    fast = empty["rates"]["doput"]["rows_per_s"]["median"]
    out.append(
        _target(
            f"DoPut rate at {at} ≥ 0.8x the rate into an empty store ({backend})",
            slow / fast if fast else None,
            ">=",
            0.8,
            backend=backend,
            stored=stored,
            empty_stored=empty["stored_before"],
            note=_stored_note(step),
        )
    )
    ceiling = entry.get("nats_no_store", {}).get("rates", {}).get("rows_per_s", {})
    for step in (empty, full):
        nats = step.get("nats")
        rate = nats["rates"]["rows_per_s"] if nats else None
        out.append(
            _target(
                f"NATS path ≥ 50 k events/s with one worker ({backend}, "
                f"{_rows(step['stored_before']).replace(' rows', '')} events stored)",
                rate["median"] if rate else None,
                ">=",
                50_000.0,
                backend=backend,
                unit="events/s",
                spread=rate,
                worker_ceiling_no_store=ceiling.get("median"),
            )
        )
    checks = [s["content"]["same"] for s in steps] + [entry.get("content", {}).get("same")]
    differing = sum(1 for same in checks if same is False)
    out.append(
        _target(
            f"every ingest contender stored the same events (checksum; {backend})",
            None if None in checks else float(differing),
            "<=",
            0.0,
            backend=backend,
            note="checks that differ",
        )
    )
    return out
