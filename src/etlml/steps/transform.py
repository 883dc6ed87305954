"""Task ``transform``: clean, impute and z-score one shard's events with the statistics in the plan."""

from __future__ import annotations

import logging

from etlml import records, settings
from etlml.features.transform import clean, key_order, normalize
from etlml.steps.run import ProcessedShard, RunContext, RunPlan, Shard, fail_fast
from etlml.storage import FrameWriter, read_frames

log = logging.getLogger(__name__)


@fail_fast
def transform(run: RunContext, plan: RunPlan, shard: Shard) -> ProcessedShard:
    """One shard's events, a row group at a time, normalized with the statistics ``extract`` fixed
    for the run (the champion's, or the run's own in ``batch`` normalization), each row group in
    event-id order (:func:`key_order`)."""
    cfg = settings.load()
    path = run.folder(cfg) / shard.key.file_name("processed")
    with FrameWriter(path, records.PROCESSED) as out:
        for raw in read_frames(shard.events, columns=list(records.EVENT.names)):
            out.write(key_order(normalize(clean(raw), plan.stats)))
    assert out.ref is not None
    log.info(
        "normalized %d events of %s with %s statistics",
        out.ref.rows,
        shard.key.label,
        plan.normalized_with,
    )
    return ProcessedShard(shard.key, out.ref, plan.normalized_with, shard.events)
