"""`bench.py --landing csv|jsonl`: an interval of landing files through extract, transform and
load_processed, each step in a process of its own (as an Airflow task runs), with its peak RSS.

The partition holds one file of ``--events`` records (as delivered by an upstream that writes one
export per interval), 1 % of them delivered again at the end of the file with another ``f1``: the
later delivery wins, so extract resolves duplicates in every shard.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STEP_ROWS = 500_000  # records generated at a time
REDELIVERED = 0.01


def _memory_mb(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) // 1024 if match else 0


def _records(start: Any, first: int, last: int, rng: np.random.Generator) -> pd.DataFrame:
    n = last - first
    offsets = rng.integers(0, 600_000_000, n)  # microseconds into the 10-minute interval
    ts = (pd.Timestamp(start) + pd.to_timedelta(offsets, unit="us")).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    f2 = rng.normal(0, 1, n)
    f2[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "event_id": [f"lnd-{i:09d}" for i in range(first, last)],
            "ts_utc": ts,
            "f1": rng.normal(10, 2, n).round(4),
            "f2": f2.round(4),
            "f3": rng.normal(100, 10, n).round(3),
        }
    )


def write_partition(folder: Path, start: Any, events: int, kind: str) -> Path:
    """One ``.csv`` or ``.jsonl`` file of ``events`` records, plus 1 % of them again at its end."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"export.{kind}"
    rng = np.random.default_rng(20_261_126)
    again = int(events * REDELIVERED)
    with path.open("w", encoding="utf-8", newline="") as out:
        for first in range(0, events, STEP_ROWS):
            _write(out, _records(start, first, min(events, first + STEP_ROWS), rng), kind, header=first == 0)
        if again:
            _write(out, _records(start, 0, again, rng), kind, header=False)
    return path


def _write(out: Any, frame: pd.DataFrame, kind: str, *, header: bool) -> None:
    if kind == "csv":
        frame.to_csv(out, index=False, header=header, lineterminator="\n")
    else:
        out.write(frame.to_json(orient="records", lines=True))
        out.write("\n")


def _step(env: dict[str, str], step: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``etlml.steps.<step>.<step>`` here, in a fresh process; its result, seconds, peak RSS (MB)
    and RSS after the imports (MB)."""
    os.environ.update(env)
    module = importlib.import_module(f"etlml.steps.{step}")
    func = getattr(module, step)
    imported = _memory_mb("VmRSS")
    started = time.perf_counter()
    if step == "transform":  # one task instance per shard; here one after the other, as on one worker
        plan, shards = args
        out = [func(kwargs["run"], plan, shard) for shard in shards]
    else:
        out = func(*args, **{k: v for k, v in kwargs.items() if k != "run"})
    return out, time.perf_counter() - started, _memory_mb("VmHWM"), imported


def in_process_of_its_own(
    env: dict[str, str], step: str, *args: Any, **kwargs: Any
) -> tuple[Any, dict[str, Any]]:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        out, seconds, peak, imported = pool.submit(_step, env, step, args, kwargs).result()
    return out, {"seconds": seconds, "peak_rss_mb": peak, "rss_after_imports_mb": imported}


def landing_run(
    env: dict[str, str], ctx: Any, kind: str, *, events: int, shard_size: int, work: Path
) -> dict[str, Any]:
    """Write the partition, then run the three steps; print and return their figures."""
    from etlml.ingest.landing import partition_key

    root = work / "landing"
    started = time.perf_counter()
    path = write_partition(root / partition_key(ctx.interval), ctx.interval.start, events, kind)
    size = path.stat().st_size
    took = time.perf_counter() - started
    print(f"\nlanding {kind}: {path.name}, {size / 1e6:,.0f} MB, written in {took:.1f} s")
    env = {**env, "ETLML_SOURCE": "landing", "ETLML_LANDING_ROOT": root.as_uri()}
    figures: dict[str, Any] = {
        "kind": kind,
        "file_bytes": size,
        "records": events + int(events * REDELIVERED),
    }
    extracted, figures["extract"] = in_process_of_its_own(env, "extract", ctx, run=ctx, shard_size=shard_size)
    plan = extracted.plan
    processed, figures["transform"] = in_process_of_its_own(env, "transform", plan, extracted.shards, run=ctx)
    loaded, figures["load_processed"] = in_process_of_its_own(
        env, "load_processed", ctx, plan, processed, run=ctx
    )
    figures["shards"] = len(extracted.shards)
    figures["counts"] = plan.counts.to_xcom()
    for step in ("extract", "transform", "load_processed"):
        f = figures[step]
        rate = figures["records"] / f["seconds"]
        print(
            f"  {step:<20}{f['seconds']:>8.2f} s {rate:>12,.0f} records/s {f['peak_rss_mb']:>7} MB peak "
            f"({f['rss_after_imports_mb']} MB after imports)"
        )
    counts = plan.counts
    print(
        f"  {counts.extracted:,} records in {len(extracted.shards)} shard(s): {counts.accepted:,} loaded, "
        f"{counts.rejected:,} rejected, {counts.deduplicated:,} duplicates; gate {loaded.audit.gate}"
    )
    return figures
