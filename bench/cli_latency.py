"""`make bench-cli`: how long each ``etlml`` command takes to answer, the median of 5 runs.

Every command of the tree (``etlml.cli.commands()``: a new one is measured by default, and one without
an invocation below fails the script) runs 5 times as a user runs it, a fresh process each time, with
the warehouse connection in the environment as a URI (``AIRFLOW_CONN_WAREHOUSE``) and ``--help``
besides. The warehouse is a throwaway database on the local PostgreSQL (``--admin-dsn``), migrated
first and dropped afterwards; the stream commands use the local Redis under a key of their own, deleted
afterwards. What a run needs that is not measured (a version to promote, say) is set up before it.

Commands that need labelled events the empty warehouse lacks (``train``, ``fit-estimator``,
``compare``) answer with their one-line error, exit 2: what is timed is everything up to the answer.

    .venv/bin/python bench/cli_latency.py [--etlml PATH] [--runs 5]

``--etlml`` times another installation's command (e.g. a checkout of an earlier release) over the same
invocations. The last line is the RESULT line: the slowest median and ``--help``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from etlml import cli

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
STATS = '{"f1": {"mean": 10, "std": 2}, "f2": {"mean": 0, "std": 1}, "f3": {"mean": 100, "std": 10}}'
LINEAR = ["--kind", "linear", "--coef", "f1=0.5,f2=0.1,f3=0.4", "--stats", STATS]


def register(name: str) -> list[str]:
    return ["models", "register", name, *LINEAR]


def invocations(role: str) -> dict[tuple[str, ...], tuple[list[list[str]], list[str]]]:
    """For each command, ``(setup, timed)``: the commands run before each timed run (not timed), and
    the timed one; ``{n}`` is the run's number."""
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    window = ["--from", (end - timedelta(days=1)).isoformat(), "--to", end.isoformat()]
    return {
        ("db", "migrate"): ([], ["db", "migrate"]),
        ("db", "check"): ([], ["db", "check"]),
        ("db", "grant-pipeline-role"): ([], ["db", "grant-pipeline-role", role, "--password-stdin"]),
        ("models", "list"): ([], ["models", "list"]),
        ("models", "show"): ([], ["models", "show", "baseline_v1"]),
        ("models", "events"): ([], ["models", "events"]),
        ("models", "register"): ([], register("g{n}")),
        ("models", "train"): ([], ["models", "train", "t{n}", "--estimator", "ridge", *window]),
        ("models", "fit-estimator"): ([], ["models", "fit-estimator", "baseline_v1", *window]),
        ("models", "compare"): ([], ["models", "compare", "r0"]),
        ("models", "promote"): ([register("p{n}")], ["models", "promote", "p{n}"]),
        ("models", "shadow"): ([], ["models", "shadow", "g{n}"]),
        ("models", "rollback"): ([register("b{n}"), ["models", "promote", "b{n}"]], ["models", "rollback"]),
        ("runs", "gaps"): ([], ["runs", "gaps", *window]),
        ("runs", "changed"): ([], ["runs", "changed", *window]),
        ("runs", "status"): ([], ["runs", "status", *window]),
        ("stream", "produce"): ([], ["stream", "produce", "--events", "10"]),
        ("stream", "trim"): ([], ["stream", "trim", "--keep-days", "1"]),
    }


def run(etlml: str, args: list[str], env: dict[str, str], n: int) -> tuple[float, int, str]:
    argv = [etlml, *(a.replace("{n}", str(n)) for a in args)]
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, input="bench-password\n", capture_output=True, text=True, check=False
    )
    return time.perf_counter() - started, done.returncode, done.stderr.strip()[-200:]


def measure(etlml: str, env: dict[str, str], runs: int, role: str) -> list[dict[str, object]]:
    plan = invocations(role)
    missing = [c for c in cli.commands() if c not in plan]
    if missing:
        sys.exit(f"bench: no invocation for {missing}; add one to invocations()")
    results = [time_one(etlml, "--help", [], ["--help"], env=env, runs=runs)]
    for command, (setup, timed) in plan.items():
        results.append(time_one(etlml, " ".join(command), setup, timed, env=env, runs=runs))
    return results


def time_one(
    etlml: str, name: str, setup: list[list[str]], timed: list[str], *, env: dict[str, str], runs: int
) -> dict[str, object]:
    seconds, codes, said = [], set(), ""
    for n in range(runs):
        for step in setup:
            run(etlml, step, env, n)
        took, code, err = run(etlml, timed, env, n)
        seconds.append(took)
        codes.add(code)
        said = err if code else said
    row = {"command": name, "median_s": round(statistics.median(seconds), 3), "exit": sorted(codes)}
    print(f"{name:28} {row['median_s']:6.2f} s  exit {row['exit']}  {said[:90]}", flush=True)
    return {**row, "runs_s": [round(s, 3) for s in seconds], "stderr": said}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--etlml", default=str(Path(sys.executable).with_name("etlml")))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--admin-dsn", default=os.environ.get("ETLML_TEST_ADMIN_DSN", ADMIN_DSN))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "cli_latency.json")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    database, role, key = f"etlml_bench_cli_{tag}", f"etlml_bench_cli_{tag}", f"etlml:bench-cli:{tag}"
    info = psycopg.conninfo.conninfo_to_dict(args.admin_dsn)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", 5432), info.get("user", "postgres")
    home = Path(tempfile.mkdtemp(prefix=f"{database}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ETLML_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW_CONN_WAREHOUSE": f"postgresql://{user}@{host}:{port}/{database}",
            "AIRFLOW_CONN_EVENTS": "redis://127.0.0.1:6379/0",
            "ETLML_STORAGE_ROOT": (home / "storage").as_uri(),
            "ETLML_LANDING_ROOT": (home / "landing").as_uri(),
            "ETLML_STREAM_KEY": key,
        }
    )
    with psycopg.connect(args.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        subprocess.run([args.etlml, "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([args.etlml, *register("r0")], env=env, check=True, capture_output=True)
        results = measure(args.etlml, env, args.runs, role)
    finally:
        cleanup(args.admin_dsn, database, role, key)
        shutil.rmtree(home, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"etlml": args.etlml, "runs": args.runs, "commands": results}, indent=2))
    slowest = max(results[1:], key=lambda r: float(str(r["median_s"])))
    print(
        f"RESULT slowest {slowest['command']} {slowest['median_s']} s; --help {results[0]['median_s']} s "
        f"(median of {args.runs}; all in {args.out})"
    )
    return 0


def cleanup(admin_dsn: str, database: str, role: str, key: str) -> None:
    """The database, the role ``grant-pipeline-role`` made and the stream key go."""
    import redis

    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(key)


if __name__ == "__main__":
    sys.exit(main())
