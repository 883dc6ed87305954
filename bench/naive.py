"""The naive approach of the public case study this project grew from, re-implemented as the speed
reference the benchmark compares against.

Each of the five steps hands its data to the next through a JSON file on disk, as the case study's
Airflow tasks did; features are cleaned and z-scored with pandas, the UPSERTs go through psycopg2's
``execute_values`` in pages of 100 rows, and the model scores one row at a time in a Python loop.
It is deliberately slow: it exists only to be measured, never to be used by the pipeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg2  # type: ignore[import-untyped]
import psycopg2.extras  # type: ignore[import-untyped]

FEATURES = ("f1", "f2", "f3")
WEIGHTS = {"f1_z": 0.3, "f2_z": 0.2, "f3_z": 0.5}
MODEL_VERSION = "v1"
PAGE_SIZE = 100

CREATE_SCHEMA = """
DROP SCHEMA IF EXISTS naive CASCADE;
CREATE SCHEMA naive;
CREATE TABLE naive.processed_data (
    event_id   text PRIMARY KEY,
    ts_utc     timestamptz NOT NULL,
    f1         double precision,
    f2         double precision,
    f3         double precision,
    f1_z       double precision,
    f2_z       double precision,
    f3_z       double precision,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE naive.predictions (
    event_id      text NOT NULL,
    model_version text NOT NULL,
    y_hat         double precision,
    predicted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, model_version)
);
"""

UPSERT_PROCESSED = """
INSERT INTO naive.processed_data (event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z)
VALUES %s
ON CONFLICT (event_id) DO UPDATE SET
    ts_utc = EXCLUDED.ts_utc,
    f1 = EXCLUDED.f1,
    f2 = EXCLUDED.f2,
    f3 = EXCLUDED.f3,
    f1_z = EXCLUDED.f1_z,
    f2_z = EXCLUDED.f2_z,
    f3_z = EXCLUDED.f3_z
"""

UPSERT_PREDICTIONS = """
INSERT INTO naive.predictions (event_id, model_version, y_hat)
VALUES %s
ON CONFLICT (event_id, model_version) DO UPDATE SET
    y_hat = EXCLUDED.y_hat,
    predicted_at = now()
"""


def _read_events_json(path: Path) -> pd.DataFrame:
    return pd.read_json(path, orient="records", dtype={"event_id": str}, convert_dates=["ts_utc"])


def extract(events: pd.DataFrame, raw_path: Path) -> None:
    events.to_json(raw_path, orient="records", date_format="iso")


def transform(raw_path: Path, processed_path: Path) -> None:
    df = _read_events_json(raw_path)
    for column in FEATURES:
        df[column] = df[column].fillna(df[column].mean())
        df[f"{column}_z"] = (df[column] - df[column].mean()) / df[column].std()
    df.to_json(processed_path, orient="records", date_format="iso")


def load_processed(conn: psycopg2.extensions.connection, processed_path: Path) -> None:
    df = _read_events_json(processed_path)
    rows = [
        (row.event_id, row.ts_utc, row.f1, row.f2, row.f3, row.f1_z, row.f2_z, row.f3_z)
        for row in df.itertuples(index=False)
    ]
    with conn.cursor() as cur:
        psycopg2.extras.execute_values(cur, UPSERT_PROCESSED, rows, page_size=PAGE_SIZE)
    conn.commit()


def predict(processed_path: Path, predictions_path: Path) -> None:
    df = _read_events_json(processed_path)
    predictions = []
    row: Any  # one row as a Series: the loop such code typically writes
    for _, row in df.iterrows():
        y_hat = WEIGHTS["f1_z"] * row.f1_z + WEIGHTS["f2_z"] * row.f2_z + WEIGHTS["f3_z"] * row.f3_z
        predictions.append({"event_id": row.event_id, "model_version": MODEL_VERSION, "y_hat": y_hat})
    with predictions_path.open("w") as f:
        json.dump(predictions, f)


def store_predictions(conn: psycopg2.extensions.connection, predictions_path: Path) -> None:
    with predictions_path.open() as f:
        predictions = json.load(f)
    rows = [(p["event_id"], p["model_version"], p["y_hat"]) for p in predictions]
    with conn.cursor() as cur:
        psycopg2.extras.execute_values(cur, UPSERT_PREDICTIONS, rows, page_size=PAGE_SIZE)
    conn.commit()


def _check_count(conn: psycopg2.extensions.connection, table: str, expected: int) -> None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM naive.{table}")  # noqa: S608 - fixed table names only
        (count,) = cur.fetchone()
    conn.commit()
    if count != expected:
        raise RuntimeError(f"naive.{table} has {count} rows after loading, expected {expected}")


def run_naive(dsn: str, events: pd.DataFrame, workdir: Path) -> dict[str, float]:
    """Run the five naive steps on ``events`` and return the seconds each took.

    ``events`` has the raw columns event_id, ts_utc, f1, f2, f3. The schema ``naive`` is created
    before and dropped after the run; neither is timed, nor are the row-count checks.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    raw_path = workdir / "naive_raw.json"
    processed_path = workdir / "naive_processed.json"
    predictions_path = workdir / "naive_predictions.json"
    seconds: dict[str, float] = {}

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(CREATE_SCHEMA)
        conn.commit()
        try:
            steps: list[tuple[str, Callable[[], None], str | None]] = [
                ("extract", lambda: extract(events, raw_path), None),
                ("transform", lambda: transform(raw_path, processed_path), None),
                ("load_processed", lambda: load_processed(conn, processed_path), "processed_data"),
                ("predict", lambda: predict(processed_path, predictions_path), None),
                ("store_predictions", lambda: store_predictions(conn, predictions_path), "predictions"),
            ]
            for name, step, loaded_table in steps:
                started = time.perf_counter()
                step()
                seconds[name] = time.perf_counter() - started
                if loaded_table:
                    _check_count(conn, loaded_table, len(events))
        finally:
            conn.rollback()
            with conn.cursor() as cur:
                cur.execute("DROP SCHEMA IF EXISTS naive CASCADE")
            conn.commit()
    finally:
        conn.close()
        for path in (raw_path, processed_path, predictions_path):
            path.unlink(missing_ok=True)
    return seconds
