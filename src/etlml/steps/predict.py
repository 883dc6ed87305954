"""Task ``predict``: score one shard's processed events with every version the run serves."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from etlml import records, settings
from etlml.models import loader
from etlml.models.scoring import Scorer
from etlml.models.serving import Role
from etlml.settings import Settings
from etlml.steps.run import (
    LoadRef,
    PredictedShard,
    ProcessedShard,
    RunContext,
    RunPlan,
    ScoredFile,
    fail_fast,
)
from etlml.storage import FileRef, FrameWriter, read_frames, read_table
from etlml.warehouse import connection, writes

log = logging.getLogger(__name__)


@fail_fast
def predict(run: RunContext, plan: RunPlan, shard: ProcessedShard, load: LoadRef) -> PredictedShard:
    """Score one shard with the champion and, if one was set, the challenger that ``extract``
    resolved; one Parquet file per version, written a row group at a time. Each version is loaded
    (an sklearn artifact read and verified) once. Events the load refused as redelivered are not
    scored: another interval holds their ids.

    A champion that cannot score fails the task. A challenger that cannot (a missing or altered
    artifact, non-finite output, anything) never does: the champion's predictions are stored
    whatever the challenger does, and its error is logged as a warning and recorded in
    ``run_audit.challenger_error`` of the load.
    """
    cfg = settings.load()
    refused = _refused_ids(load)
    with connection.connect(cfg.warehouse_conn_id) as conn:
        champion = loader.load(conn, plan.serving.champion)
        files = [_scored(run, cfg, shard, champion, "champion", refused=refused)]
        error = None
        if plan.serving.challenger is not None:
            try:
                challenger = loader.load(conn, plan.serving.challenger)
                files.append(_scored(run, cfg, shard, challenger, "challenger", refused=refused))
            except Exception as exc:  # noqa: BLE001 - a shadow model must never fail the run; recorded below
                error = f"challenger {plan.serving.challenger!r} could not score {shard.key.label}: {exc}"
                log.warning("%s; the champion's predictions are stored without it", error)
                if load.load_id is not None:
                    with conn.transaction():
                        writes.record_challenger_error(conn, run.dag_id, run.interval, load.load_id, error)
    return PredictedShard(shard.key, tuple(files), load.load_id, error)


def _refused_ids(load: LoadRef) -> pd.Index | None:
    if load.redelivered is None:
        return None
    ids: pd.Index = pd.Index(
        read_table(load.redelivered, columns=["event_id"]).column("event_id").to_pandas()
    )
    return ids


def _scored(
    run: RunContext,
    cfg: Settings,
    shard: ProcessedShard,
    scorer: Scorer,
    role: Role,
    *,
    refused: pd.Index | None,
) -> ScoredFile:
    path = run.folder(cfg) / shard.key.file_name(f"predictions-{scorer.version}")
    scored = _score(path, shard, scorer, refused)
    log.info("scored %d events of %s with model version %s", scored.rows, shard.key.label, scorer.version)
    return ScoredFile(scorer.version, role, scored)


def _score(path: Any, shard: ProcessedShard, scorer: Scorer, refused: pd.Index | None) -> FileRef:
    # batch mode keeps its per-batch z-scores; otherwise each version scores under its own statistics
    stored_z = shard.normalized_with in {"batch", scorer.version}
    with FrameWriter(path, records.PREDICTION) as out:
        for frame in read_frames(shard.processed):
            kept = frame if refused is None else frame[~frame["event_id"].isin(refused)]
            out.write(kept[["event_id", "ts_utc"]].assign(y_hat=scorer.predict(kept, use_stored_z=stored_z)))
    assert out.ref is not None
    return out.ref
