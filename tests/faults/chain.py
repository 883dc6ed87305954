"""A pipeline run's tasks in processes of their own, as Airflow's workers run them, for the fault tests.

``python -m tests.faults.chain PHASE STATE RUN_ID START EVENTS`` runs one phase of the run of the
10-minute interval starting at START (ISO-8601) and keeps what XCom would carry in the JSON file STATE:
``extract`` (extract and transform), ``load`` (load_processed), ``score`` (predict and
store_predictions of every shard). A phase run again is a task's retry: the same inputs.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

PIPELINE = "10_etl_ml_pipeline"
SHARD_SIZE = 1_000_000


def main(phase: str, state_file: Path, run_id: str, start: datetime, events: int) -> None:
    from etlml.interval import Interval
    from etlml.steps.run import LoadRef, ProcessedShard, RunContext, RunPlan

    ctx = RunContext(PIPELINE, run_id, Interval(start, start + timedelta(minutes=10)))
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if phase == "extract":
        from etlml.steps.extract import extract
        from etlml.steps.transform import transform

        extracted = extract(ctx, simulated_events=events, shard_size=SHARD_SIZE)
        processed = [transform(ctx, extracted.plan, shard) for shard in extracted.shards]
        state = {"plan": extracted.plan.to_xcom(), "processed": [p.to_xcom() for p in processed]}
    elif phase == "load":
        from etlml.steps.load_processed import load_processed

        shards = [ProcessedShard.from_xcom(p) for p in state["processed"]]
        state["loaded"] = load_processed(ctx, RunPlan.from_xcom(state["plan"]), shards).to_xcom()
    elif phase == "score":
        from etlml.steps.predict import predict
        from etlml.steps.store_predictions import store_predictions

        plan, load = RunPlan.from_xcom(state["plan"]), LoadRef.from_xcom(state["loaded"])
        for shard in state["processed"]:
            store_predictions(ctx, predict(ctx, plan, ProcessedShard.from_xcom(shard), load))
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    state_file.write_text(json.dumps(state))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], datetime.fromisoformat(sys.argv[4]), int(sys.argv[5]))
