"""Real inputs through the pipeline, end to end: one interval of landing files (CSV, JSONL or Parquet)
or of a Redis stream (bench/stream_extract.py) through extract, transform, load_processed, predict and
store_predictions, each step in a process of its own (as an Airflow task runs), with its peak RSS.

A landing partition holds one file of ``records`` records (as delivered by an upstream that writes one
export per interval), the last 1 % of them earlier records delivered again with another ``f1``: the
later delivery wins, so extract resolves duplicates in every shard. The three formats hold the same
records (generated once, written in each).

Each step runs in a process forked, for that step alone, from a warm process that has run the five
steps once on a small simulated interval (as bench.py warms up before the simulator's run: a worker
is warm) and holds nothing else: its figures are the step's seconds, its peak RSS (VmHWM, reset when the step
starts) and its RSS before the step. The steps' seconds add up to the end-to-end figure, as the
simulator's do in bench.py.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STEP_ROWS = 500_000  # records generated at a time
REDELIVERED = 0.01
KINDS = ("csv", "jsonl", "parquet")
STEPS = ("extract", "transform", "load_processed", "predict", "store_predictions")
PARQUET_ROW_GROUP = 100_000


def _memory_mb(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) // 1024 if match else 0


def _records(start: Any, ids: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    offsets = rng.integers(0, 600_000_000, n)  # microseconds into the 10-minute interval
    f2 = rng.normal(0, 1, n)
    f2[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "event_id": [f"lnd-{i:09d}" for i in ids],
            "ts_utc": pd.Timestamp(start) + pd.to_timedelta(offsets, unit="us"),
            "f1": rng.normal(10, 2, n).round(4),
            "f2": f2.round(4),
            "f3": rng.normal(100, 10, n).round(3),
        }
    )


def redelivered(records: int) -> int:
    """How many of ``records`` are deliveries again of earlier ones."""
    return int(records * REDELIVERED)


def write_partitions(folders: dict[str, Path], start: Any, records: int) -> dict[str, Path]:
    """One ``export.<kind>`` of ``records`` records in each folder of ``folders`` (kind: folder), the
    last 1 % of them earlier records again."""
    again = redelivered(records)
    unique = records - again
    rng = np.random.default_rng(20_261_126)
    paths = {kind: folder / f"export.{kind}" for kind, folder in folders.items()}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    with _writers(paths) as writers:
        parts = [np.arange(first, min(unique, first + STEP_ROWS)) for first in range(0, unique, STEP_ROWS)]
        parts += [np.arange(first, min(again, first + STEP_ROWS)) for first in range(0, again, STEP_ROWS)]
        for part in parts:
            frame = _records(start, part, rng)
            as_text = _as_text(frame)
            for write in writers.values():
                write(frame, as_text)
    return paths


@contextmanager
def _writers(paths: dict[str, Path]) -> Any:
    """A function per kind that appends a frame of records to its file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    opened: list[Any] = []
    writers = {}
    try:
        for kind, path in paths.items():
            if kind == "parquet":
                out = pq.ParquetWriter(path, pa.schema(list(_schema(pa).items())))
                writers[kind] = lambda frame, _, out=out: out.write_table(
                    pa.Table.from_pandas(frame, out.schema, preserve_index=False), PARQUET_ROW_GROUP
                )
            elif kind == "csv":
                path.write_text(",".join(_schema(pa)) + "\n")
                sink = path.open("ab")
                opened.append(sink)  # closed after the writer (the list is closed in reverse)
                out = pacsv.CSVWriter(
                    sink,
                    pa.schema([(n, pa.string() if n == "ts_utc" else t) for n, t in _schema(pa).items()]),
                    write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"),
                )
                writers[kind] = lambda _, text, out=out: out.write_table(text)
            else:
                out = path.open("w", encoding="utf-8")
                writers[kind] = lambda _, text, out=out: out.write(
                    text.to_pandas().to_json(orient="records", lines=True).rstrip("\n") + "\n"
                )
            opened.append(out)
        yield writers
    finally:
        for out in reversed(opened):
            out.close()


def _schema(pa: Any) -> dict[str, Any]:
    return {
        "event_id": pa.string(),
        "ts_utc": pa.timestamp("us", tz="UTC"),
        "f1": pa.float64(),
        "f2": pa.float64(),
        "f3": pa.float64(),
    }


def _as_text(frame: pd.DataFrame) -> Any:
    """The records as text files carry them: ``ts_utc`` ISO-8601 text with its offset."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.Table.from_pandas(frame, pa.schema(list(_schema(pa).items())), preserve_index=False)
    iso = pc.strftime(table["ts_utc"], "%Y-%m-%dT%H:%M:%S+00:00")  # %S has the microseconds
    return table.set_column(1, "ts_utc", iso)


# --- one step per process -------------------------------------------------------------------------


def _warm(env: dict[str, str], ctx: Any) -> None:
    """The warm process: the environment, then the five steps once on 1,000 simulated events of
    ``ctx``'s interval, as bench.py's warm-up run (the library imports inside its functions; the first
    calls compile and resolve what later calls reuse), and the readers of every source imported. Its
    connections are closed when a step returns, so none is shared with the children forked from it."""
    import ctypes
    import gc

    import pyarrow as pa

    os.environ.update(env)
    for module in ("etlml.ingest.landing", "etlml.ingest.formats", "etlml.ingest.stream", "redis"):
        importlib.import_module(module)
    extracted = _call("extract", ctx, (1_000,), simulated=True)
    plan = extracted.plan
    processed = _call("transform", ctx, (plan, extracted.shards))
    loaded = _call("load_processed", ctx, (plan, processed))
    _call("store_predictions", ctx, (_call("predict", ctx, (plan, processed, loaded.ref)),))
    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _call(step: str, ctx: Any, args: tuple[Any, ...], *, simulated: bool = False) -> Any:
    """The step as the DAG calls it; a mapped step once per shard, one after the other (one worker).
    ``simulated``: extract ``args[0]`` simulated events whatever the environment says."""
    func = getattr(importlib.import_module(f"etlml.steps.{step}"), step)
    if step == "extract" and simulated:
        from etlml.ingest.simulator import SimulatedSource

        return func(ctx, simulated_events=args[0], source=SimulatedSource(1, args[0]))
    if step == "extract":
        (shard_size,) = args
        return func(ctx, shard_size=shard_size)
    if step == "transform":
        plan, shards = args
        return [func(ctx, plan, shard) for shard in shards]
    if step == "load_processed":
        plan, processed = args
        return func(ctx, plan, processed)
    if step == "predict":
        plan, processed, ref = args
        return [func(ctx, plan, p, ref) for p in processed]
    (predicted,) = args
    return [func(ctx, p) for p in predicted]


def _step(env: dict[str, str], step: str, ctx: Any, args: tuple[Any, ...]) -> Any:
    """Run the step here, in a child forked for it; its result, seconds, peak RSS (MB) and RSS before
    it (MB)."""
    os.environ.update(env)
    importlib.import_module(f"etlml.steps.{step}")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on (proc(5))
    before = _memory_mb("VmRSS")
    started = time.perf_counter()
    out = _call(step, ctx, args)
    return out, time.perf_counter() - started, _memory_mb("VmHWM"), before


def _forked(env: dict[str, str], step: str, ctx: Any, args: tuple[Any, ...]) -> Any:
    with ProcessPoolExecutor(1, mp_context=get_context("fork")) as pool:
        return pool.submit(_step, env, step, ctx, args).result()


class StepProcesses:
    """A warm process that runs each step in a child of its own (see the module's docstring)."""

    def __init__(self, env: dict[str, str], warm_up: Any) -> None:
        spawn = get_context("spawn")
        self.pool = ProcessPoolExecutor(1, mp_context=spawn, initializer=_warm, initargs=(env, warm_up))

    def __enter__(self) -> StepProcesses:
        self.pool.submit(time.sleep, 0).result()  # warm before the first step's clock starts
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown()

    def run(self, env: dict[str, str], step: str, ctx: Any, *args: Any) -> tuple[Any, dict[str, Any]]:
        out, seconds, peak, before = self.pool.submit(_forked, env, step, ctx, args).result()
        return out, {"seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": before}


def source_run(
    steps: StepProcesses,
    env: dict[str, str],
    ctx: Any,
    *,
    label: str,
    records: int,
    events: int,
    shard_size: int,
) -> dict[str, Any]:
    """The five steps on the interval of ``ctx`` from the source ``env`` configures; prints and returns
    their figures, with ``records_per_s`` end to end (records read per second of the steps' time).
    Raises unless every one of the ``records`` was read and ``events`` of them loaded, none rejected:
    a benchmark that measured a different run would mislead."""
    figures: dict[str, Any] = {"source": label, "records": records}
    extracted, figures["extract"] = steps.run(env, "extract", ctx, shard_size)
    plan = extracted.plan
    processed, figures["transform"] = steps.run(env, "transform", ctx, plan, extracted.shards)
    loaded, figures["load_processed"] = steps.run(env, "load_processed", ctx, plan, processed)
    predicted, figures["predict"] = steps.run(env, "predict", ctx, plan, processed, loaded.ref)
    _, figures["store_predictions"] = steps.run(env, "store_predictions", ctx, predicted)
    total = sum(figures[step]["seconds"] for step in STEPS)
    counts = plan.counts
    if (counts.extracted, counts.accepted, counts.rejected) != (records, events, 0):
        raise RuntimeError(
            f"{label}: expected {records:,} records read and {events:,} events loaded, none rejected; "
            f"the run read {counts.extracted:,}, loaded {counts.accepted:,}, rejected {counts.rejected:,} "
            f"({counts.to_xcom()})"
        )
    figures.update(
        seconds=total,
        records_per_s=records / total,
        peak_rss_mb=max(figures[step]["peak_rss_mb"] for step in STEPS),
        shards=len(extracted.shards),
        counts=counts.to_xcom(),
        gate=str(loaded.audit.gate),
    )
    print(f"\n{label}: {records:,} records")
    for step in (*STEPS, None):
        f = figures[step] if step else {"seconds": total, "peak_rss_mb": figures["peak_rss_mb"]}
        print(
            f"  {step or 'end to end':<20}{f['seconds']:>8.2f} s {records / f['seconds']:>12,.0f} records/s "
            f"{f['peak_rss_mb']:>7} MB peak" + (f" ({f['rss_before_mb']} MB before)" if step else "")
        )
    print(
        f"  {counts.extracted:,} records in {len(extracted.shards)} shard(s): {counts.accepted:,} loaded, "
        f"{counts.rejected:,} rejected, {counts.deduplicated:,} duplicates; gate {loaded.audit.gate}"
    )
    return figures


def landing_runs(
    steps: StepProcesses,
    ctx: Any,
    kinds: tuple[str, ...],
    *,
    records: int,
    shard_size: int,
    work: Path,
    between: Any = None,
) -> dict[str, dict[str, Any]]:
    """Write one partition per kind (each under a landing root of its own), then run each end to end;
    ``between()`` is called before each run (e.g. emptying the warehouse)."""
    from etlml.ingest.landing import partition_key

    started = time.perf_counter()
    roots = {kind: work / f"landing-{kind}" for kind in kinds}
    folders = {kind: root / partition_key(ctx.interval) for kind, root in roots.items()}
    paths = write_partitions(folders, ctx.interval.start, records)
    took = time.perf_counter() - started
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:,.0f} MB" for p in paths.values())
    print(f"\nlanding files of {records:,} records written in {took:.1f} s: {sizes}")
    out = {}
    for kind in kinds:
        if between is not None:
            between()
        env = {"ETLML_SOURCE": "landing", "ETLML_LANDING_ROOT": roots[kind].as_uri()}
        figures = source_run(
            steps,
            env,
            ctx,
            label=f"landing {kind}",
            records=records,
            events=records - redelivered(records),
            shard_size=shard_size,
        )
        out[kind] = {**figures, "file_bytes": paths[kind].stat().st_size, "redelivered": redelivered(records)}
        paths[kind].unlink()
    return out
