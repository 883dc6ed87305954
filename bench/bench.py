"""`make bench`: the five pipeline steps in-process against PostgreSQL, events/s per step and overall.

Runs the same library functions the DAG tasks call, on one data interval of ``--events`` events,
into a throwaway warehouse database that is dropped afterwards. A second run of the same interval
measures the rerun path (every row unchanged).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ADMIN_DSN = os.environ.get("ETLML_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def timed(label: str, events: int, step: Callable[[], Any], results: list[tuple[str, float]]) -> Any:
    started = time.perf_counter()
    out = step()
    seconds = time.perf_counter() - started
    results.append((label, seconds))
    rate = events / seconds
    print(f"{label:<24}{seconds:>9.2f} s {rate:>13,.0f} events/s   peak RSS {peak_rss_mb():>6} MB")
    return out


def run_pipeline(events: int, label: str) -> float:
    from etlml import pipeline
    from etlml.interval import Interval

    start = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    run = pipeline.RunContext("bench", f"bench_{label}", Interval(start, start + timedelta(minutes=10)))
    results: list[tuple[str, float]] = []
    print(f"\n{label}: {events:,} events")
    extracted = timed("extract", events, lambda: pipeline.extract(run, batch_size=events), results)
    processed = timed("transform", events, lambda: pipeline.transform_step(run, extracted, "model"), results)
    timed("load_processed", events, lambda: pipeline.load_processed(run, processed, extracted), results)
    predicted = timed("predict", events, lambda: pipeline.predict(run, processed), results)
    timed("store_predictions", events, lambda: pipeline.store_predictions(run, predicted), results)
    total = sum(seconds for _, seconds in results)
    print(f"{'end to end':<24}{total:>9.2f} s {events / total:>13,.0f} events/s")
    return events / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="etlml-bench-"))
    dbname = f"etlml_bench_{uuid.uuid4().hex[:8]}"
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    user, host, port = info.get("user", "postgres"), info.get("host", "127.0.0.1"), info.get("port", 5432)
    url = f"postgresql://{user}@{host}:{port}"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_WAREHOUSE": f"{url}/{dbname}",
            "ETLML_STORAGE_ROOT": (work / "storage").as_uri(),
        }
    )
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        try:
            from etlml import pipeline

            pipeline.migrate_schema()
            first = run_pipeline(args.events, "first run")
            rerun = run_pipeline(args.events, "rerun (all rows unchanged)")
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nRESULT events={args.events} events_per_s={first:.0f} rerun_events_per_s={rerun:.0f} "
        f"peak_rss_mb={peak_rss_mb()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
