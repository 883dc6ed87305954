"""`make bench`: the pipeline's steps against PostgreSQL on simulated and on real inputs, next to two
references.

First (unless ``--no-airflow``), a 10,000-event run under a real scheduler (bench/airflow_overhead.py),
for what Airflow adds per task and the DAG file's parse time. Then, on one data interval of
``--events`` records, in a throwaway warehouse database:

1. the pipeline on the simulator: the library functions the DAG tasks call, in order, in this process,
   as one worker runs them (events/s and peak RSS of each step; one shard per ``--shard-size`` events);
2. monitoring the interval (``30_monitor``'s computation: realized accuracy and PSI in SQL) after
   the first run, with every event labelled (``--only-monitor``: one pipeline run, then this alone);
3. a rerun of the same interval (every row unchanged: the merge path);
4. the COPY bound: the same processed rows and predictions, already encoded, sent by binary COPY into
   empty tables shaped like ``processed_data`` and ``predictions`` (same columns and indexes): what
   one connection cannot beat;
5. the naive reference (bench/naive.py) on the first ``--naive-sample`` of the same events;
6. the real inputs (``--sources``, default all): the interval as one landing file of ``--events``
   records in CSV, in JSONL and in Parquet, and as ``--events`` entries of a Redis stream, each end to
   end (extract through store_predictions) into an emptied warehouse, each step in a process of its
   own with its peak RSS (bench/landing.py, bench/stream_extract.py; ``--only-real`` runs these
   alone, e.g. at ``--events 3000000`` for the memory bound);
7. the same interval split into ``--shards`` shards, the mapped steps of each shard in their own
   worker process, as Celery workers would run them.

With ``--growth N`` it runs instead the growth run (bench/growth.py): the writes of one interval into an
empty warehouse and into one filled to ``N`` events; the last line is then ``RESULT growth_ratio=...``.

Ends with one line: ``RESULT events_per_s=... copy_bound_ratio=... naive_speedup=... peak_rss_mb=...
landing_csv_events_per_s=... landing_jsonl_events_per_s=... landing_parquet_events_per_s=...
stream_events_per_s=... stream_extract_events_per_s=... real_input_ratio=... real_peak_rss_mb=...
monitor_interval_s=...`` (a real input's figure is its records per second end to end;
``real_input_ratio`` is the slowest one's divided by the simulator's first run) and writes a chart
(``--chart``) and the figures as JSON (``--json``), with the wall-clock seconds of each part.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ADMIN_DSN = os.environ.get("ETLML_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def interval_start(now: datetime) -> datetime:
    """The start of the interval the benchmark measures: an hour before the latest one closed at
    ``now``, so it and its neighbours (the warm-up's before it, the sharded run's and the growth run's
    after it) have closed, the stream's grace included, on whatever day the benchmark runs."""
    latest = now.astimezone(UTC).replace(second=0, microsecond=0)
    return latest.replace(minute=latest.minute - latest.minute % 10) - timedelta(hours=1)


INTERVAL_START = interval_start(datetime.now(UTC))
STEPS = ("extract", "transform", "load_processed", "predict", "store_predictions")
REAL_SOURCES = ("csv", "jsonl", "parquet", "stream")


def peak_rss_mb() -> int:
    """This process's peak resident memory since the last :func:`reset_peak` (VmHWM)."""
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) // 1024 if match else 0


def reset_peak() -> None:
    """Start a new peak from what the process holds: memory earlier steps freed is given back first
    (garbage collected, Arrow's pool, glibc's heap), as a task process of its own would not have it;
    then Linux resets VmHWM to the current RSS (proc(5), clear_refs). What earlier steps left behind
    and cannot be given back still counts, so in-process peaks are an upper bound of a task's."""
    import ctypes
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


@dataclass
class Run:
    """Seconds and peak RSS (MB) per step of one pipeline run."""

    label: str
    events: int
    seconds: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, int] = field(default_factory=dict)
    quiet: bool = False

    def step(self, name: str, func: Callable[[], Any]) -> Any:
        reset_peak()
        started = time.perf_counter()
        out = func()
        self.seconds[name] = time.perf_counter() - started
        self.peak_mb[name] = peak_rss_mb()
        rate = self.events / self.seconds[name]
        if not self.quiet:
            print(
                f"  {name:<20}{self.seconds[name]:>8.2f} s {rate:>12,.0f} events/s {self.peak_mb[name]:>7} MB"
            )
        return out

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def rate(self) -> float:
        return self.events / self.total


def run_context(label: str, offset: int = 0) -> Any:
    from etlml.interval import Interval
    from etlml.steps.run import RunContext

    start = INTERVAL_START + timedelta(minutes=10 * offset)
    return RunContext("bench", f"bench_{label}", Interval(start, start + timedelta(minutes=10)))


def pipeline_run(
    label: str, events: int, shard_size: int, offset: int = 0
) -> tuple[Run, Any, list[Any], list[Any]]:
    """The five steps in this process; mapped steps run shard after shard, as on one worker."""
    from etlml.steps.extract import extract
    from etlml.steps.load_processed import load_processed
    from etlml.steps.predict import predict
    from etlml.steps.store_predictions import store_predictions
    from etlml.steps.transform import transform

    ctx = run_context("one_worker", offset)
    run = Run(label, events)
    print(f"\n{label}: {events:,} events")
    extracted = run.step("extract", lambda: extract(ctx, simulated_events=events, shard_size=shard_size))
    plan = extracted.plan
    processed = run.step("transform", lambda: [transform(ctx, plan, s) for s in extracted.shards])
    loaded = run.step("load_processed", lambda: load_processed(ctx, plan, processed))
    predicted = run.step("predict", lambda: [predict(ctx, plan, p, loaded.ref) for p in processed])
    run.step("store_predictions", lambda: [store_predictions(ctx, p) for p in predicted])
    print(f"  {'end to end':<20}{run.total:>8.2f} s {run.rate:>12,.0f} events/s")
    return run, extracted, processed, predicted


def _worker_init(env: dict[str, str]) -> None:
    """Import what the steps use before the clock starts (a Celery worker is warm, too)."""
    os.environ.update(env)
    from airflow.sdk import ObjectStoragePath

    from etlml import settings
    from etlml.steps import predict, store_predictions, transform
    from etlml.warehouse import connection

    ObjectStoragePath(settings.load().storage_root)
    with connection.connect(settings.load().warehouse_conn_id):
        for step in (transform, predict, store_predictions):
            step.log.debug("worker %d ready", os.getpid())


def _transform(ctx: Any, plan: Any, shard: Any) -> Any:
    from etlml.steps.transform import transform

    return transform(ctx, plan, shard)


def _predict(ctx: Any, plan: Any, processed: Any, load: Any) -> Any:
    from etlml.steps.predict import predict

    return predict(ctx, plan, processed, load)


def _store(ctx: Any, predicted: Any) -> Any:
    from etlml.steps.store_predictions import store_predictions

    return store_predictions(ctx, predicted)


def sharded_run(events: int, shards: int, env: dict[str, str], dsn: str) -> Run:
    """The interval in ``shards`` shards: the mapped steps of each shard in a worker process of its
    own, extract and load_processed once, as the DAG runs them. The workers first run a small
    interval, so both sides start warm."""
    context = get_context("spawn")
    with ProcessPoolExecutor(shards, mp_context=context, initializer=_worker_init, initargs=(env,)) as pool:
        _sharded(pool, 10_000, shards, Run("warm-up", 10_000, quiet=True), offset=-2)
        truncate(dsn)
        run = Run(f"{shards} shards, {shards} workers", events)
        print(f"\n{run.label}: {events:,} events")
        _sharded(pool, events, shards, run, offset=1)
    print(f"  {'end to end':<20}{run.total:>8.2f} s {run.rate:>12,.0f} events/s")
    return run


def _sharded(pool: ProcessPoolExecutor, events: int, shards: int, run: Run, offset: int) -> None:
    from etlml.steps.extract import extract
    from etlml.steps.load_processed import load_processed

    ctx = run_context("sharded", offset)
    size = -(-events // shards)
    extracted = run.step("extract", lambda: extract(ctx, simulated_events=events, shard_size=size))
    plan, parts = extracted.plan, extracted.shards
    n = len(parts)
    processed = run.step("transform", lambda: list(pool.map(_transform, [ctx] * n, [plan] * n, parts)))
    loaded = run.step("load_processed", lambda: load_processed(ctx, plan, processed))
    predicted = run.step(
        "predict", lambda: list(pool.map(_predict, [ctx] * n, [plan] * n, processed, [loaded.ref] * n))
    )
    run.step("store_predictions", lambda: list(pool.map(_store, [ctx] * n, predicted)))


def copy_bound(dsn: str, processed: list[Any], predicted: list[Any], work: Path) -> float:
    """Seconds to binary-COPY the run's processed rows and predictions, encoded beforehand, into
    empty tables with the columns and indexes of ``processed_data`` and ``predictions``."""
    from etlml import storage
    from etlml.warehouse import pgcopy, writes

    ctx = run_context("one_worker")
    tables = {
        "bound_processed": ("processed_data", writes.PROCESSED_DIRECT),
        "bound_predictions": ("predictions", writes.PREDICTIONS_DIRECT),
    }
    files = {
        "bound_processed": [p.processed for p in processed],
        "bound_predictions": [f.predictions for p in predicted for f in p.files],
    }
    constants = {
        "bound_processed": {
            "normalized_with": "baseline_v1",
            "interval_start": ctx.interval.start,
            "interval_end": ctx.interval.end,
        },
        "bound_predictions": {
            "model_version": "baseline_v1",
            "written_by_run": ctx.ref,
            "interval_start": ctx.interval.start,
        },
    }
    seconds = 0.0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, (like, columns) in tables.items():
            encoded = work / f"{table}.copy"
            with encoded.open("wb") as out:
                out.write(pgcopy.HEADER)
                for ref in files[table]:
                    for frame in storage.read_frames(ref):
                        for piece in pgcopy.pieces(frame.assign(**constants[table]), columns):
                            out.write(piece)
                out.write(pgcopy.TRAILER)
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier(table), sql.Identifier(like)
                )
            )
            names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(table), names
            )
            started = time.perf_counter()
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(statement) as copy,
                encoded.open("rb") as fh,
            ):
                while block := fh.read(8 << 20):
                    copy.write(block)
            elapsed = time.perf_counter() - started
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            print(f"  {table:<20}{elapsed:>8.2f} s  ({rows[0] if rows else 0:,} rows)")
            seconds += elapsed
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
            encoded.unlink()
    return seconds


def naive_reference(dsn: str, extracted: Any, sample: int, work: Path) -> float:
    """Events/s of the naive approach on the first ``sample`` events the pipeline extracted."""
    import pandas as pd

    from etlml import records, storage
    from naive import run_naive

    frames = []
    taken = 0
    for shard in extracted.shards:
        for frame in storage.read_frames(shard.events, columns=list(records.EVENT.names)):
            frames.append(frame.iloc[: sample - taken])
            taken += len(frames[-1])
            if taken >= sample:
                break
        if taken >= sample:
            break
    events = pd.concat(frames, ignore_index=True)
    seconds = run_naive(dsn, events, work / "naive")
    for name, s in seconds.items():
        print(f"  {name:<20}{s:>8.2f} s {len(events) / s:>12,.0f} events/s")
    total = sum(seconds.values())
    print(f"  {'end to end':<20}{total:>8.2f} s {len(events) / total:>12,.0f} events/s ({len(events):,})")
    return len(events) / total


def airflow_overhead(path: Path) -> dict[str, Any]:
    """Run bench/airflow_overhead.py (its own throwaway stack) and return its figures."""
    import subprocess

    command = [sys.executable, str(HERE / "airflow_overhead.py"), "--json", str(path)]
    print(f"Airflow overhead: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"airflow_overhead.py failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    print("\n".join(done.stdout.splitlines()[-25:]))
    figures = json.loads(path.read_text())
    warm = figures["runs"][-1]
    tasks = warm["tasks"]
    return {
        **figures["headline"],
        "events": figures["events"],
        "task_instances": len(tasks),
        "handoffs_s": warm["path_handoffs_s"],
        "task_startup_s": sum(t.get("spawn_s") or 0.0 for t in tasks) / len(tasks)
        + sum(t.get("startup_s") or 0.0 for t in tasks) / len(tasks)
        + sum(t.get("finish_s") or 0.0 for t in tasks) / len(tasks),
        "library_import_s": figures["task_import_s"],
    }


def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE processed_data, predictions, rejected_events, run_audit, labels, model_performance, "
            "feature_drift"
        )
        conn.execute("VACUUM ANALYZE")


def monitor_interval(dsn: str, ctx: Any) -> dict[str, Any]:
    """Label every event of the interval (y_true = y_hat + noise), then time computing its
    model_performance and feature_drift rows: once as they are (no error estimator), then, after
    fitting baseline_v1's error estimator on the interval's labelled events (not timed), twice with
    the estimated MAE (the second replaces the first). ``seconds`` is the first computation with the
    estimate; ``estimate_seconds`` what the estimate added."""
    from etlml import settings
    from etlml.models import estimators
    from etlml.monitoring import metrics
    from etlml.settings import Monitoring

    params = {"start": ctx.interval.start, "end": ctx.interval.end}
    with psycopg.connect(dsn, autocommit=True) as conn:
        began = time.perf_counter()
        conn.execute(
            "INSERT INTO labels (event_id, y_true, observed_at, interval_start, interval_end, source_file, "
            "written_by_run) SELECT event_id, y_hat + random() - 0.5, ts_utc, %(start)s, %(end)s, "
            "'bench', 'bench' FROM predictions",
            params,
        )
        conn.execute("VACUUM ANALYZE labels")
        labelled = time.perf_counter() - began
        began = time.perf_counter()
        metrics.compute_interval(conn, ctx.interval, Monitoring())
        without = time.perf_counter() - began
        window = (ctx.interval.start, ctx.interval.end)
        root = settings.load().storage_root
        estimators.fit_for(conn, "baseline_v1", window, storage_root=root, actor="bench")
        seconds = []
        for _ in range(2):
            began = time.perf_counter()
            report = metrics.compute_interval(conn, ctx.interval, Monitoring())
            seconds.append(time.perf_counter() - began)
        alone = _estimate_alone(conn, ctx.interval, report.performance[0].n_predictions)
        conn.execute("DELETE FROM error_estimators WHERE model_version = 'baseline_v1'")
    (perf,) = report.performance
    (estimate,) = report.estimates
    print(f"  labels for every event {labelled:>8.2f} s")
    print(
        f"  {'monitor interval':<20}{seconds[0]:>8.2f} s  (again: {seconds[1]:.2f} s; without the "
        f"estimate: {without:.2f} s; the estimate alone: {alone:.2f} s)"
    )
    print(
        f"  {perf.n_predictions:,} predictions, {perf.n_labeled:,} labelled, MAE {perf.mae:.4f}, estimated "
        f"{estimate.mae:.4f} on {estimate.n:,}; drift "
        + ", ".join(f"{d.feature} {d.psi:.4f} {d.status}" for d in report.drift)
    )
    return {
        "seconds": seconds[0],
        "again_seconds": seconds[1],
        "without_estimate_seconds": without,
        "estimate_seconds": alone,
        "events": perf.n_predictions,
    }


def _estimate_alone(conn: Any, interval: Any, n_predictions: int) -> float:
    """The estimate's own time on the interval, as ``30_monitor`` runs it (its transaction's session
    settings; estimator loaded, inputs read by binary COPY, trees evaluated, the row updated), in a
    transaction rolled back: what it adds to monitoring. Printed by stage."""
    from etlml.models import estimation
    from etlml.models.estimators import StoredEstimator
    from etlml.monitoring.estimates import estimate_interval, read_inputs
    from etlml.warehouse.connection import query

    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(query("monitor_session"))
        began = time.perf_counter()
        estimate_interval(cur, interval, {"baseline_v1": n_predictions}, 1.5)
        whole = time.perf_counter() - began
        row = cur.execute("SELECT artifact_uri, artifact_sha256 FROM error_estimators").fetchone()
        began = time.perf_counter()
        estimator = StoredEstimator("baseline_v1", row[0], row[1], 1.0, 1.0).load()
        loaded = time.perf_counter()
        share = min(1.0, estimation.MAX_ESTIMATED_EVENTS / n_predictions)
        features, y_hat = read_inputs(cur, interval, "baseline_v1", share)
        read = time.perf_counter()
        estimation.estimate(estimator, features, y_hat, 1.0)
        done = time.perf_counter()
        cur.execute("ROLLBACK")
    print(
        f"  the estimate alone {whole:.2f} s: load {loaded - began:.2f} s, read {len(y_hat):,} events "
        f"{read - loaded:.2f} s, predict {done - read:.2f} s"
    )
    return whole


@contextmanager
def throwaway_warehouse() -> Iterator[tuple[str, dict[str, str], Path]]:
    """A migrated warehouse database and a work folder, dropped and deleted afterwards: its DSN, the
    environment the steps run with, and the folder."""
    work = Path(tempfile.mkdtemp(prefix="etlml-bench-"))
    dbname = f"etlml_bench_{uuid.uuid4().hex[:8]}"
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    user, host, port = info.get("user", "postgres"), info.get("host", "127.0.0.1"), info.get("port", 5432)
    dsn = f"postgresql://{user}@{host}:{port}/{dbname}"
    env = {
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_WAREHOUSE": dsn,
        "ETLML_STORAGE_ROOT": (work / "storage").as_uri(),
    }
    os.environ.update(env)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        try:
            from etlml.steps.init_schema import migrate_schema

            migrate_schema()
            yield dsn, env, work
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            shutil.rmtree(work, ignore_errors=True)


def real_inputs(
    args: argparse.Namespace, dsn: str, work: Path, shard_size: int, sources: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """``--events`` records of each real source in ``sources`` (landing ``csv``, ``jsonl``, ``parquet``,
    the Redis ``stream``) end to end, each step in a process of its own (bench/landing.py), on the
    measured interval, each into an emptied warehouse as the simulator's first run."""
    from landing import KINDS, StepProcesses, landing_runs, source_run
    from stream_extract import filled_stream

    ctx = run_context("real")
    out: dict[str, dict[str, Any]] = {}
    with StepProcesses(dict(os.environ), run_context("real_warm_up", offset=-3)) as steps:
        kinds = tuple(k for k in KINDS if k in sources)
        if kinds:
            landed = landing_runs(
                steps,
                ctx,
                kinds,
                records=args.events,
                shard_size=shard_size,
                work=work,
                between=lambda: truncate(dsn),
            )
            out.update({f"landing_{kind}": figures for kind, figures in landed.items()})
        if "stream" in sources:
            with filled_stream(ctx, args.events) as (env, filled):
                truncate(dsn)
                out["stream"] = source_run(
                    steps,
                    env,
                    ctx,
                    label="Redis stream",
                    records=args.events,
                    events=args.events,
                    shard_size=shard_size,
                )
                out["stream"]["fill_s"] = filled
    return out


def real_only(args: argparse.Namespace, dsn: str, work: Path, shard_size: int) -> int:
    """``--only-real``: the real inputs alone (``--sources``), their figures in ``real.json``."""
    figures = real_inputs(args, dsn, work, shard_size, args.sources)
    path = args.json.with_name("real.json")
    path.write_text(json.dumps(figures, indent=2))
    print(f"figures: {path}")
    print(
        "RESULT "
        + " ".join(
            f"{name}_records_per_s={f['records_per_s']:.0f} {name}_peak_rss_mb={f['peak_rss_mb']}"
            for name, f in figures.items()
        )
        + f" records={args.events}"
    )
    return 0


def growth_main(args: argparse.Namespace) -> int:
    """``--growth N``: only the growth run (bench/growth.py), in a warehouse of its own."""
    from growth import growth_run

    @contextmanager
    def empty_warehouse() -> Iterator[str]:
        with throwaway_warehouse() as (fresh, _, _):
            yield fresh

    with throwaway_warehouse() as (dsn, _, _):
        figures = growth_run(dsn, args.events, args.growth, INTERVAL_START, empty_warehouse)
    path = args.json.with_name("growth.json")
    path.write_text(json.dumps(figures, indent=2))
    print(f"figures: {path}")
    print(
        f"RESULT growth_ratio={figures['ratio']:.2f} drop_day_s={figures['drop_day_s']:.3f} "
        f"disk_mib_per_million_events={figures['disk_mib_per_million_events']:.0f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--shard-size", type=int, default=None, help="default: the DAG's (1,000,000)")
    parser.add_argument("--shards", type=int, default=2, help="shards (and workers) of the sharded run")
    parser.add_argument("--naive-sample", type=int, default=100_000)
    parser.add_argument("--chart", type=Path, default=HERE / "out" / "throughput.png")
    parser.add_argument("--json", type=Path, default=HERE / "out" / "bench.json")
    parser.add_argument("--no-airflow", action="store_true", help="skip the run under a real scheduler")
    parser.add_argument(
        "--only-real",
        action="store_true",
        help="only the real inputs (--sources), end to end, each step in a process of its own with its "
        "peak RSS (e.g. --events 3000000 for the memory bound)",
    )
    parser.add_argument(
        "--sources",
        type=lambda text: tuple(text.split(",")),
        default=REAL_SOURCES,
        help=f"the real inputs measured, of {','.join(REAL_SOURCES)} (default: all)",
    )
    parser.add_argument(
        "--only-monitor", action="store_true", help="one pipeline run, then only the monitoring measurement"
    )
    parser.add_argument(
        "--growth",
        type=int,
        metavar="N",
        help="instead: the growth run, one interval of --events into an empty warehouse and one into a "
        "warehouse filled to N events (bench/growth.py; make bench GROWTH=30000000)",
    )
    args = parser.parse_args()
    if set(args.sources) - set(REAL_SOURCES):
        parser.error(f"--sources takes some of {','.join(REAL_SOURCES)}, got {','.join(args.sources)}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    if args.growth:
        return growth_main(args)
    wall: dict[str, float] = {}
    loadavg = {"start": os.getloadavg()[0]}
    began = time.perf_counter()
    overhead = (
        None
        if args.no_airflow or args.only_real or args.only_monitor
        else airflow_overhead(args.json.with_name("airflow.json"))
    )
    wall["airflow"] = time.perf_counter() - began

    with throwaway_warehouse() as (dsn, env, work):
        from etlml.steps.run import DEFAULT_SHARD_SIZE

        shard_size = args.shard_size or DEFAULT_SHARD_SIZE
        if args.only_real:
            return real_only(args, dsn, work, shard_size)
        if args.only_monitor:
            return monitor_only(args, dsn, shard_size)
        figures = measure(args, dsn, env, work, shard_size, wall=wall)
    wall["total"] = time.perf_counter() - began
    loadavg["end"] = os.getloadavg()[0]
    figures.update(airflow=overhead, wall_s=wall, loadavg_1min=loadavg, cpus=os.cpu_count())
    report(args, figures)
    return 0


@contextmanager
def timed(wall: dict[str, float], section: str) -> Iterator[None]:
    """Adds the section's wall-clock seconds to ``wall`` (where a benchmark's time goes)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        wall[section] = time.perf_counter() - began


def measure(
    args: argparse.Namespace,
    dsn: str,
    env: dict[str, str],
    work: Path,
    shard_size: int,
    *,
    wall: dict[str, float],
) -> dict[str, Any]:
    """Every in-process measurement of ``make bench``, in order (the simulator's first run, then what
    needs its rows: monitoring, the rerun; the references; the real inputs; the sharded run); their
    figures."""
    with timed(wall, "simulator"):
        # first calls import and compile what the steps use; in Airflow that is start-up cost
        # (bench/airflow_overhead.py measures it), here it would blur the steps' own speed
        pipeline_run("warm-up, another interval", 10_000, shard_size, offset=-1)
        truncate(dsn)
        first, extracted, processed, predicted = pipeline_run(
            "pipeline (simulator), first run of the interval", args.events, shard_size
        )
    with timed(wall, "monitor"):
        print(f"\nmonitoring the interval of {args.events:,} events")
        monitor = monitor_interval(dsn, run_context("one_worker"))
    with timed(wall, "rerun"):
        rerun, *_ = pipeline_run(
            "rerun of the same interval (rows unchanged: merge path)", args.events, shard_size
        )
    with timed(wall, "copy_bound"):
        print("\nCOPY bound: the same rows, encoded beforehand, into empty tables of the same shape")
        bound = copy_bound(dsn, processed, predicted, work)
        print(f"  {'both tables':<20}{bound:>8.2f} s {args.events / bound:>12,.0f} events/s")
    with timed(wall, "naive"):
        print(f"\nnaive reference on {args.naive_sample:,} of the same events")
        naive_rate = naive_reference(dsn, extracted, args.naive_sample, work)
    with timed(wall, "real_inputs"):  # each into an emptied warehouse, as the simulator's first run
        real = real_inputs(args, dsn, work, shard_size, args.sources)
    with timed(wall, "sharded"):
        truncate(dsn)
        sharded = sharded_run(args.events, args.shards, env, dsn)
    slowest = min(real.values(), key=lambda f: f["records_per_s"]) if real else None
    return {
        "events": args.events,
        "shard_size": shard_size,
        "first_run": {"seconds": first.seconds, "peak_rss_mb": first.peak_mb, "events_per_s": first.rate},
        "real_inputs": real,
        "real_input_ratio": slowest["records_per_s"] / first.rate if slowest else None,
        "slowest_real_input": slowest["source"] if slowest else None,
        "rerun": {"seconds": rerun.seconds, "peak_rss_mb": rerun.peak_mb, "events_per_s": rerun.rate},
        "copy_bound": {"seconds": bound, "events_per_s": args.events / bound},
        "naive": {"sample": args.naive_sample, "events_per_s": naive_rate},
        "sharded": {"shards": args.shards, "seconds": sharded.seconds, "events_per_s": sharded.rate},
        "copy_bound_ratio": bound / first.total,
        "naive_speedup": first.rate / naive_rate,
        "shard_speedup": sharded.rate / first.rate,
        "peak_rss_mb": max(first.peak_mb.values()),
        "monitor": monitor,
    }


def monitor_only(args: argparse.Namespace, dsn: str, shard_size: int) -> int:
    """``--only-monitor``: a first run of the interval, then the monitoring measurement alone."""
    pipeline_run("pipeline, first run of the interval", args.events, shard_size)
    print(f"\nmonitoring the interval of {args.events:,} events")
    figures = monitor_interval(dsn, run_context("one_worker"))
    args.json.with_name("monitor.json").write_text(json.dumps(figures, indent=2))
    print(
        f"RESULT monitor_interval_s={figures['seconds']:.2f} "
        f"monitor_estimate_s={figures['estimate_seconds']:.2f} events={figures['events']}"
    )
    return 0


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Write the JSON and the chart; print the summary, then the RESULT line."""
    from chart import write_chart

    args.json.write_text(json.dumps(figures, indent=2))
    events, first, shards = figures["events"], figures["first_run"], figures["sharded"]
    rerun, bound, naive = figures["rerun"], figures["copy_bound"], figures["naive"]
    write_chart(
        args.chart,
        [(name, events / first["seconds"][name]) for name in STEPS] + [("end to end", first["events_per_s"])],
        [
            ("rerun, end to end", rerun["events_per_s"]),
            (f"{shards['shards']} shards on {shards['shards']} workers, end to end", shards["events_per_s"]),
            ("COPY bound (both tables)", bound["events_per_s"]),
            (f"naive approach ({naive['sample']:,} events)", naive["events_per_s"]),
        ]
        + [(f"{f['source']}, end to end", f["records_per_s"]) for f in figures["real_inputs"].values()],
        f"etlml pipeline, {events:,} events, {os.cpu_count()} cores: events/s",
    )
    print(
        f"\nend to end {first['events_per_s']:,.0f} events/s; "
        f"COPY bound {bound['events_per_s']:,.0f} events/s "
        f"(ratio {figures['copy_bound_ratio']:.2f}); naive {naive['events_per_s']:,.0f} events/s "
        f"(speedup {figures['naive_speedup']:.1f}x); {shards['shards']} shards {shards['events_per_s']:,.0f} "
        f"events/s ({figures['shard_speedup']:.2f}x); rerun {rerun['events_per_s']:,.0f} events/s"
    )
    overhead = figures["airflow"]
    if overhead:
        print(
            f"Airflow, {overhead['events']:,} events: first task start to last task end "
            f"{overhead['first_start_to_last_end_s']:.1f} s (run {overhead['run_s']:.1f} s), of which "
            f"{_seconds(overhead['overhead_s'])} s Airflow's ({overhead['handoffs_s']:.1f} s between tasks, "
            f"{overhead['task_startup_s']:.2f} s start-up and finish per task instance, plus "
            f"{overhead['library_import_s']:.2f} s importing etlml.steps); DAG file parse "
            f"{overhead['parse_s'] * 1000:.0f} ms"
        )
    real = figures["real_inputs"]
    for f in real.values():
        print(
            f"{f['source']}, {f['records']:,} records: end to end {f['records_per_s']:,.0f} records/s "
            f"({f['records_per_s'] / first['events_per_s']:.2f} of the simulator's), extract "
            f"{f['records'] / f['extract']['seconds']:,.0f} records/s, peak RSS {f['peak_rss_mb']} MB"
        )
    wall = figures["wall_s"]
    print(
        "wall-clock seconds: "
        + ", ".join(f"{name} {s:.0f}" for name, s in wall.items())
        + "; load average {start:.1f} at the start, {end:.1f} at the end".format(**figures["loadavg_1min"])
        + f" ({figures['cpus']} CPUs)"
    )
    print(f"chart: {args.chart}  figures: {args.json}")
    print(f"RESULT {result_fields(figures)}")


def _seconds(value: float | None) -> str:
    """A figure that may be missing (a task log without the task runner's markers): ``-``."""
    return "-" if value is None else f"{value:.1f}"


def result_fields(figures: dict[str, Any]) -> str:
    """The RESULT line's fields: the simulator's, then each real input's end to end and the slowest
    one's ratio to the simulator (``-`` for a source not measured)."""
    first, real = figures["first_run"], figures["real_inputs"]
    fields = {
        "events_per_s": f"{first['events_per_s']:.0f}",
        "copy_bound_ratio": f"{figures['copy_bound_ratio']:.2f}",
        "naive_speedup": f"{figures['naive_speedup']:.1f}",
        "peak_rss_mb": str(figures["peak_rss_mb"]),
    }
    for name in REAL_SOURCES:
        key = "stream" if name == "stream" else f"landing_{name}"
        fields[f"{key}_events_per_s"] = f"{real[key]['records_per_s']:.0f}" if key in real else "-"
    stream = real.get("stream")
    fields["stream_extract_events_per_s"] = (
        f"{stream['records'] / stream['extract']['seconds']:.0f}" if stream else "-"
    )
    ratio = figures["real_input_ratio"]
    fields["real_input_ratio"] = f"{ratio:.2f}" if ratio is not None else "-"
    fields["real_peak_rss_mb"] = str(max((f["peak_rss_mb"] for f in real.values()), default="-"))
    fields["monitor_interval_s"] = f"{figures['monitor']['seconds']:.2f}"
    return " ".join(f"{k}={v}" for k, v in fields.items())


if __name__ == "__main__":
    sys.exit(main())
