"""Model version records (checked by models.spec) and vectorized scoring."""

import pandas as pd
import pytest

from etlml.errors import ModelError
from etlml.features.stats import FeatureStats
from etlml.models import spec
from etlml.models.scoring import LinearModel, score

STATS = {"f1": {"mean": 10, "std": 2}, "f2": {"mean": 0, "std": 1}, "f3": {"mean": 100, "std": 10}}
PARAMS = {"coef": {"f1": 0.3, "f2": 0.2, "f3": 0.5}, "intercept": 0.0}


def linear(version: str, params: dict) -> LinearModel:
    return LinearModel.from_spec(spec.parse(version, "linear", params, STATS))


def test_score_is_the_linear_formula() -> None:
    model = linear("baseline_v1", PARAMS)
    frame = pd.DataFrame({"f1_z": [1.0, 0.0, -2.0], "f2_z": [0.0, 1.0, 0.5], "f3_z": [0.0, 0.0, 1.0]})
    assert score(frame, model).tolist() == [0.3, 0.2, 0.3 * -2.0 + 0.2 * 0.5 + 0.5 * 1.0]


def test_intercept_is_added() -> None:
    model = linear("v", {**PARAMS, "intercept": 1.5})
    frame = pd.DataFrame({"f1_z": [0.0], "f2_z": [0.0], "f3_z": [0.0]})
    assert score(frame, model).tolist() == [1.5]


@pytest.mark.parametrize(
    ("kind", "params", "stats", "message"),
    [
        ("tree", PARAMS, STATS, "not 'linear'"),
        ("linear", {"coef": {"f1": 1}}, STATS, "malformed"),
        ("linear", {"coef": {"f1": "x", "f2": 1, "f3": 1}}, STATS, "malformed"),
        ("linear", {"coef": {"f1": float("inf"), "f2": 1, "f3": 1}}, STATS, "non-finite"),
        ("linear", PARAMS, {"f1": STATS["f1"]}, "lacks statistics"),
        ("linear", PARAMS, {**STATS, "f2": {"mean": 0, "std": 0}}, "positive std"),
        ("sklearn", {}, STATS, "without an artifact"),
    ],
)
def test_unusable_records_are_refused(kind: str, params: dict, stats: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        spec.parse("v", kind, params, stats)


def test_feature_stats_refuse_nan() -> None:
    with pytest.raises(ModelError):
        FeatureStats(float("nan"), 1.0)
