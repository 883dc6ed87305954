"""How long migrations 0013 and 0014 take to move a warehouse of the unpartitioned layout into day
partitions.

``python bench/upgrade.py --events 1000000``: a throwaway database migrated to 0012, filled with
``--events`` processed events over ten days with one prediction each and 1 % of them rejected, then
migrated to the partitioned layout; prints the seconds per million events.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import psycopg
from psycopg import sql

ADMIN_DSN = os.environ.get("ETLML_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

FILL = [
    """
INSERT INTO processed_data (event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed,
                            f3_imputed, normalized_with, interval_start, interval_end)
SELECT md5('e' || g), s + interval '1 second', random(), random(), random(), random(), random(), random(),
       false, false, false, 'baseline_v1', s, s + interval '10 min'
FROM generate_series(1, %(events)s) AS g,
     LATERAL (SELECT '2026-11-10T00:00Z'::timestamptz + (g %% 1440) * interval '10 min') AS i(s)
""",
    """
INSERT INTO predictions (event_id, model_version, y_hat, ts_utc, written_by_run)
SELECT event_id, 'baseline_v1', f1_z, ts_utc, 'bench/upgrade' FROM processed_data
""",
    """
INSERT INTO rejected_events (interval_start, interval_end, source_file, row_number, reason, message, event_id,
                             raw, written_by_run)
SELECT interval_start, interval_end, 'f.csv', row_number() OVER (), 'invalid_number', 'm', event_id, '\\x00',
       'bench/upgrade'
FROM processed_data WHERE f1 < 0.01
""",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    from etlml.warehouse import schema

    dbname = f"etlml_upgrade_{uuid.uuid4().hex[:8]}"
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    dsn = psycopg.conninfo.make_conninfo(**{**info, "dbname": dbname})
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        try:
            with psycopg.connect(dsn) as conn:
                shipped = schema.available()
                schema.available = lambda: [m for m in shipped if m.version < 13]  # type: ignore[assignment]
                schema.migrate(conn)
                for statement in FILL:
                    conn.execute(statement, {"events": args.events})
                conn.commit()
                schema.available = lambda: shipped  # type: ignore[assignment]
                started = time.perf_counter()
                done = schema.migrate(conn)
                seconds = time.perf_counter() - started
            assert [m.version for m in done] == [m.version for m in shipped if m.version >= 13]
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    per_million = seconds / args.events * 1e6
    print(f"migrations 0013 and 0014 of {args.events:,} events with their predictions: {seconds:.1f} s")
    print(f"RESULT upgrade_s_per_million_events={per_million:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
