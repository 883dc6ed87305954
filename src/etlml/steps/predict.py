"""Task ``predict``: score one shard's processed events with every version the run serves."""

from __future__ import annotations

import logging
from typing import Any

from etlml import records, settings
from etlml.models import loader
from etlml.models.scoring import Scorer
from etlml.steps.run import PredictedShard, ProcessedShard, RunContext, RunPlan, ScoredFile, fail_fast
from etlml.storage import FileRef, FrameWriter, read_frames
from etlml.warehouse import connection

log = logging.getLogger(__name__)


@fail_fast
def predict(run: RunContext, plan: RunPlan, shard: ProcessedShard) -> PredictedShard:
    """Score one shard with the champion and, if one was set, the challenger that ``extract``
    resolved; one Parquet file per version, written a row group at a time. Each version is loaded
    (an sklearn artifact read and verified) once."""
    cfg = settings.load()
    with connection.connect(cfg.warehouse_conn_id) as conn:
        scorers = [(role, loader.load(conn, version)) for role, version in plan.serving.roles]
    files = []
    for role, scorer in scorers:
        path = run.folder(cfg) / shard.key.file_name(f"predictions-{scorer.version}")
        scored = _score(path, shard, scorer)
        files.append(ScoredFile(scorer.version, role, scored))
        log.info("scored %d events of %s with model version %s", scored.rows, shard.key.label, scorer.version)
    return PredictedShard(shard.key, tuple(files))


def _score(path: Any, shard: ProcessedShard, scorer: Scorer) -> FileRef:
    # batch mode keeps its per-batch z-scores; otherwise each version scores under its own statistics
    stored_z = shard.normalized_with in {"batch", scorer.version}
    with FrameWriter(path, records.PREDICTION) as out:
        for frame in read_frames(shard.processed):
            out.write(
                frame[["event_id", "ts_utc"]].assign(y_hat=scorer.predict(frame, use_stored_z=stored_z))
            )
    assert out.ref is not None
    return out.ref
