"""Task ``store_predictions``: one shard's predictions of every scored version, in one transaction."""

from __future__ import annotations

import functools
import logging
from typing import Any

import psycopg

from etlml import settings
from etlml.errors import PermanentError
from etlml.steps.run import PredictedShard, RunContext, StoredShard, fail_fast
from etlml.storage import read_frames
from etlml.warehouse import connection, writes

log = logging.getLogger(__name__)


class OutdatedLoadError(PermanentError, RuntimeError):
    """The interval was loaded again after these predictions were computed: their features are gone."""


@fail_fast
def store_predictions(run: RunContext, shard: PredictedShard) -> StoredShard:
    """COPYed straight into ``predictions`` on a first run, merged on a rerun; other versions' rows
    are never touched.

    Stored only if the interval's current load (``run_audit.load_id``, share-locked for the
    transaction) is the one ``predict`` scored: then every predicted event is a row that load
    committed, and the straight COPY cannot store an orphan or a score of features since replaced.
    When another run loaded the interval since (two runs of one interval at once), that run scores
    and stores its own load: this store is superseded and succeeds having stored nothing. Any other
    mismatch (the interval's rows gone, or reloaded by this same run) fails the task without retry.
    """
    cfg = settings.load()
    stored = []
    with connection.connect(cfg.warehouse_conn_id) as conn, conn.transaction():
        writes.lock_intervals(conn, [run.interval], shared=True)  # never beside a load of the interval
        if any(f.predictions.rows for f in shard.files):
            newer = _newer_load(conn, run, shard)
            if newer is not None:
                return StoredShard(shard.key, (), superseded_by=newer)
        for scored in shard.files:
            rows = functools.partial(read_frames, scored.predictions)
            result = writes.upsert_predictions(
                conn, rows, scored.model_version, run.ref, interval=run.interval, copy_first=True
            )
            stored.append((scored, result))
            log.info(
                "predictions of %s for %s, %s: %s",
                scored.model_version,
                run.interval.key,
                shard.key.label,
                result.to_xcom(),
            )
    return StoredShard(shard.key, tuple(stored))


def _newer_load(conn: psycopg.Connection[Any], run: RunContext, shard: PredictedShard) -> str | None:
    """``None`` if the shard's load is the interval's current one; the run whose later load replaced
    it if another run's; else raises :class:`OutdatedLoadError`."""
    current = writes.current_load(conn, run.dag_id, run.interval)
    if current is not None and shard.load_id is not None and current[0] == shard.load_id:
        return None
    if current is not None and current[0] is not None and shard.load_id is not None and current[1] != run.ref:
        log.info(
            "%s of %s scored load %s, superseded by load %s of %s, which scores and stores its own rows: "
            "nothing stored",
            shard.key.label,
            run.interval.key,
            shard.load_id,
            current[0],
            current[1],
        )
        return current[1]
    loaded_by = "nobody" if current is None else current[1]
    raise OutdatedLoadError(
        f"the predictions of {run.ref} for {run.interval.key} ({shard.key.label}) were computed from "
        f"load {shard.load_id}, but the interval's rows are now those of load "
        f"{None if current is None else current[0]} by {loaded_by}; storing them could leave "
        "predictions of features that are gone. Nothing was stored: clear the latest run of the "
        "interval from load_processed (or let it finish) to score its rows"
    )
