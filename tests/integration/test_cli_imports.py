"""What each `etlml` command imports, in a fresh process as a user runs it, with the warehouse
connection in the environment as a URI: Airflow only where the command needs it, pandas, pyarrow and
scikit-learn only where it computes with them. The commands are read from the parser, so a new one
fails here until it is given an invocation below. How fast they answer is `make bench-cli`'s business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from etlml import cli

pytestmark = pytest.mark.db

HEAVY = ("airflow", "pandas", "pyarrow", "sklearn")
FRAMES = {"pandas", "pyarrow"}  # pandas imports pyarrow when it is installed
STATS = '{"f1": {"mean": 10, "std": 2}, "f2": {"mean": 0, "std": 1}, "f3": {"mean": 100, "std": 10}}'
LINEAR = ["--kind", "linear", "--coef", "f1=0.5,f2=0.1,f3=0.4", "--stats", STATS]
END = datetime.now(UTC).replace(second=0, microsecond=0)
WINDOW = ["--from", (END - timedelta(days=1)).isoformat(), "--to", END.isoformat()]

# command -> (arguments, the heavy modules it may import); run in this order on one warehouse
INVOCATIONS: dict[tuple[str, ...], tuple[list[str], set[str]]] = {
    ("db", "migrate"): (["db", "migrate"], set()),
    ("db", "check"): (["db", "check"], set()),
    ("db", "grant-pipeline-role"): (["db", "grant-pipeline-role", "ROLE", "--password-stdin"], set()),
    ("models", "list"): (["models", "list"], set()),
    ("models", "show"): (["models", "show", "baseline_v1"], set()),
    ("models", "events"): (["models", "events", "--json"], set()),
    ("models", "register"): (["models", "register", "v2", *LINEAR], set()),
    ("models", "shadow"): (["models", "shadow", "v2"], set()),
    ("models", "compare"): (["models", "compare"], set()),
    ("models", "promote"): (["models", "promote", "v2"], set()),
    ("models", "rollback"): (["models", "rollback"], set()),
    # training reads labelled events into frames and fits scikit-learn estimators
    ("models", "train"): (["models", "train", "v3", "--estimator", "ridge", *WINDOW], FRAMES | {"sklearn"}),
    ("models", "fit-estimator"): (["models", "fit-estimator", "v2", *WINDOW], FRAMES | {"sklearn"}),
    ("runs", "gaps"): (["runs", "gaps", *WINDOW], set()),
    ("runs", "changed"): (["runs", "changed", *WINDOW], set()),
    ("runs", "status"): (["runs", "status", *WINDOW], set()),
    # the simulator makes frames; nothing else
    ("stream", "produce"): (["stream", "produce", "--events", "3"], FRAMES),
    ("stream", "trim"): (["stream", "trim", "--keep-days", "1"], FRAMES),
}

PROBE = """
import json, sys
from etlml import cli
code = cli.main(sys.argv[1:])
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def test_every_command_has_an_invocation() -> None:
    assert set(cli.commands()) == set(INVOCATIONS)


def test_no_command_imports_what_it_does_not_need(fresh_migrated: str) -> None:
    from psycopg import conninfo

    role = f"{conninfo.conninfo_to_dict(fresh_migrated)['dbname']}_pipeline"
    env = {
        **os.environ,
        "AIRFLOW_CONN_EVENTS": "redis://127.0.0.1:6379/0",
        "ETLML_STREAM_KEY": f"etlml:test-cli-imports:{role}",
    }
    found = {}
    try:
        for command, (args, allowed) in INVOCATIONS.items():
            argv = [a.replace("ROLE", role) for a in args]
            done = subprocess.run(
                [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
                env=env,
                input="a-password\n",
                capture_output=True,
                text=True,
                check=False,
            )
            result = json.loads(done.stderr.strip().splitlines()[-1])
            found[command] = (result["code"], set(result["heavy"]) - allowed)
    finally:
        _drop(fresh_migrated, role, env["ETLML_STREAM_KEY"])
    assert {c: extra for c, (_, extra) in found.items() if extra} == {}
    # each ran as far as a user's would: the ones that need labelled events say so (exit 2)
    assert {c for c, (code, _) in found.items() if code != 0} <= {
        ("models", "compare"),
        ("models", "train"),
        ("models", "fit-estimator"),
    }


def _drop(dsn: str, role: str, key: str) -> None:
    import psycopg
    import redis
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(key)
