"""What XCom carries between tasks: typed payloads that survive their JSON round trip, stay small, and
refuse what they cannot read with a message that says what to do."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from etlml.errors import SettingsError
from etlml.features.stats import FeatureStats
from etlml.ingest.contract import Counts
from etlml.models.serving import Serving
from etlml.steps.run import (
    LoadRef,
    PredictedShard,
    ProcessedShard,
    RunPlan,
    ScoredFile,
    Shard,
    ShardKey,
    simulated_events,
)
from etlml.storage import FileRef

REF = FileRef("file:///tmp/run/events-002-of-003.parquet", 120, "ab" * 32)
STATS = {"f1": FeatureStats(10, 2), "f2": FeatureStats(0, 1), "f3": FeatureStats(100, 10)}
PLAN = RunPlan(
    source="landing",
    counts=Counts(10, 7, 2, 1, by_reason={"invalid_number": 2}, imputed={"f2": 1}),
    rejected=FileRef("file:///tmp/run/rejected.parquet", 3, "cd" * 32),
    serving=Serving("baseline_v1", "v2"),
    normalization="model",
    stats=STATS,
)


def through_xcom(data: dict[str, Any]) -> dict[str, Any]:
    """What a task reads back: XCom stores JSON."""
    out: dict[str, Any] = json.loads(json.dumps(data))
    return out


def test_the_plan_round_trips_and_names_its_versions_for_readers() -> None:
    data = through_xcom(PLAN.to_xcom())
    assert RunPlan.from_xcom(data) == PLAN
    assert (data["model_version"], data["challenger"], data["counts"]["extracted"]) == (
        "baseline_v1",
        "v2",
        10,
    )
    assert PLAN.normalized_with == "baseline_v1"
    batch = RunPlan(**{**PLAN.__dict__, "normalization": "batch"})
    assert RunPlan.from_xcom(through_xcom(batch.to_xcom())).normalized_with == "batch"


def test_a_plan_written_by_an_older_release_says_to_clear_the_run() -> None:
    old = {k: v for k, v in through_xcom(PLAN.to_xcom()).items() if k not in {"stats", "normalization"}}
    with pytest.raises(SettingsError, match="clear the run from extract"):
        RunPlan.from_xcom({**old, "batch_stats": None})


def test_shard_payloads_round_trip() -> None:
    key = ShardKey(1, 3)
    assert key.label == "shard 2 of 3" and key.file_name("events") == "events-002-of-003.parquet"
    shard = Shard(key, REF)
    assert Shard.from_xcom(through_xcom(shard.to_xcom())) == shard
    processed = ProcessedShard(key, REF, "baseline_v1", events=REF)
    assert ProcessedShard.from_xcom(through_xcom(processed.to_xcom())) == processed
    predicted = PredictedShard(
        key,
        (ScoredFile("baseline_v1", "champion", REF), ScoredFile("v2", "challenger", REF)),
        load_id="6f1c2a4e-0000-4000-8000-000000000001",
        challenger_error="challenger 'v2' could not score shard 2 of 3: artifact is missing",
    )
    data = through_xcom(predicted.to_xcom())
    assert PredictedShard.from_xcom(data) == predicted
    assert (data["model_version"], data["challenger"]) == ("baseline_v1", "v2")
    assert len(json.dumps(data)) < 1200  # metadata only, whatever the shard's size


def test_the_load_a_run_scores_round_trips_and_older_payloads_say_to_clear_the_run() -> None:
    for load in (LoadRef("6f1c2a4e-0000-4000-8000-000000000001", REF), LoadRef(None)):
        assert LoadRef.from_xcom(through_xcom({"staged": 3, **load.to_xcom()})) == load
    with pytest.raises(SettingsError, match="clear the run from load_processed"):
        LoadRef.from_xcom({"staged": 3, "inserted": 3, "updated": 0})
    old_predicted = {k: v for k, v in through_xcom(PredictedShard(ShardKey(), ()).to_xcom()).items()}
    del old_predicted["load_id"]
    with pytest.raises(SettingsError, match="clear the run from load_processed"):
        PredictedShard.from_xcom(old_predicted)


def test_simulated_events_and_the_deprecated_batch_size(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="etlml.steps.run"):
        assert simulated_events({"simulated_events": 300, "batch_size": None}) == 300
        assert simulated_events({}) == 200
        assert caplog.records == []
        assert simulated_events({"simulated_events": 200, "batch_size": 50}) == 50
    [warning] = caplog.records
    assert "batch_size is deprecated" in warning.getMessage()
    assert "simulated_events=50" in warning.getMessage()
