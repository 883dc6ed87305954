"""Task ``store_predictions``: one shard's predictions of every scored version, in one transaction."""

from __future__ import annotations

import functools
import logging

from etlml import settings
from etlml.steps.run import PredictedShard, RunContext, StoredShard, fail_fast
from etlml.storage import read_frames
from etlml.warehouse import connection, writes

log = logging.getLogger(__name__)


@fail_fast
def store_predictions(run: RunContext, shard: PredictedShard) -> StoredShard:
    """COPYed straight into ``predictions`` on a first run (``load_processed`` committed their events
    before ``predict`` ran), merged on a rerun; other versions' rows are never touched."""
    cfg = settings.load()
    stored = []
    with connection.connect(cfg.warehouse_conn_id) as conn, conn.transaction():
        for scored in shard.files:
            rows = functools.partial(read_frames, scored.predictions)
            result = writes.upsert_predictions(conn, rows, scored.model_version, run.ref, copy_first=True)
            stored.append((scored, result))
            log.info(
                "predictions of %s for %s, %s: %s",
                scored.model_version,
                run.interval.key,
                shard.key.label,
                result.to_xcom(),
            )
    return StoredShard(shard.key, tuple(stored))
