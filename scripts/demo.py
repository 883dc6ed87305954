"""`make demo`: a local Airflow with both DAGs unpaused, a first run, and its predictions.

Local use only: the login is admin/admin and the database role's password is fixed below.
Ctrl-C stops every process this script started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import psycopg

from scripts import localstack

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".demo"

QUERY = """SELECT p.event_id, p.model_version, round(p.y_hat::numeric, 4) AS y_hat, p.ts_utc
FROM predictions p ORDER BY p.ts_utc DESC LIMIT 5;"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("ETLML_DEMO_PORT", "8080")))
    parser.add_argument(
        "--admin-dsn",
        default=os.environ.get("ETLML_DEMO_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a superuser connection used once to create the demo role and databases",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    subprocess.run([str(ROOT / "scripts" / "services.sh")], check=True)
    dbs = localstack.Databases(
        admin_dsn=args.admin_dsn,
        role="etlml",
        password="etlml",  # noqa: S106 - local demo only
        metadata_db="etlml_airflow",
        warehouse_db="etlml_warehouse",
    )
    dbs.ensure()
    env = localstack.airflow_env(STATE / "airflow", dbs, ROOT / "dags", args.port)
    airflow = Path(sys.executable).with_name("airflow")
    etlml = Path(sys.executable).with_name("etlml")
    print("demo: migrating Airflow's metadata DB and the warehouse ...", flush=True)
    for command in ([str(airflow), "db", "migrate"], [str(etlml), "db", "migrate"]):
        if subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL).returncode != 0:
            print(f"demo: `{' '.join(command[-3:])}` failed (its error is above); nothing was started.")
            return 1

    log = STATE / "airflow.log"
    proc = localstack.start([str(airflow), "standalone"], env, log)

    def shutdown(signum: int, frame: FrameType | None) -> None:
        print("\ndemo: stopping Airflow ...", flush=True)
        localstack.stop(proc)
        print("demo: stopped; data stays in PostgreSQL (etlml_warehouse) until you drop it.")
        sys.exit(0)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        run_demo(env, args.port, proc, log, dbs)
    except Exception:
        print(f"demo: failed; Airflow's output is in {log}", file=sys.stderr)
        localstack.stop(proc)
        raise
    while proc.poll() is None:
        time.sleep(1)
    print(f"demo: Airflow exited with code {proc.returncode}; see {log}", file=sys.stderr)
    return 1


def run_demo(
    env: dict[str, str], port: int, proc: subprocess.Popen[bytes], log: Path, dbs: localstack.Databases
) -> None:
    api = localstack.AirflowApi(f"http://127.0.0.1:{port}")
    print(f"demo: starting Airflow (output in {log}) ...", flush=True)
    api.wait_healthy(proc=proc)
    api.login()
    for dag_id in ("00_init_schema", "10_etl_ml_pipeline"):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    for dag_id in ("00_init_schema", "10_etl_ml_pipeline"):
        run_id = api.trigger(dag_id)
        state = api.wait_for_run(dag_id, run_id)
        print(f"demo: {dag_id} run {run_id}: {state}", flush=True)
        if state != "success":
            raise RuntimeError(f"{dag_id} did not succeed: {api.task_states(dag_id, run_id)}")
    with psycopg.connect(dbs.warehouse_url) as conn:
        rows = conn.execute(QUERY).fetchall()
        total = conn.execute("SELECT count(*) FROM predictions").fetchone()
    print(f"\ndemo: {total[0] if total else 0} predictions stored; the latest:")
    for row in rows:
        print("   ", *row)
    print(
        f"""
  Airflow UI   http://127.0.0.1:{port}   (login admin / admin, local demo only)
  Query        psql {dbs.warehouse_url} -c "{QUERY.replace(chr(10), " ")}"
  The pipeline now runs every 10 minutes. Ctrl-C stops Airflow.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
