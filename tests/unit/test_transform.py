"""Pure transforms on three-row frames."""

import math

import numpy as np
import pandas as pd
import pytest

from etlml.features.stats import FeatureStats
from etlml.features.transform import batch_stats, clean, key_order, normalize

STATS = {"f1": FeatureStats(10, 2), "f2": FeatureStats(0, 1), "f3": FeatureStats(100, 10)}


def raw_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ["a", "b", "c"],
            "ts_utc": ["2026-11-25T18:10:00+00:00", "2026-11-25T19:11:00+01:00", "2026-11-25T18:12:00Z"],
            "f1": ["12", 8.0, "oops"],
            "f2": [None, 1.5, math.inf],
            "f3": [110.0, 90.0, float("nan")],
        }
    )


def test_clean_coerces_types_and_marks_unusable_numbers_missing() -> None:
    cleaned = clean(raw_frame())
    assert cleaned["f1"].tolist()[:2] == [12.0, 8.0]
    assert cleaned["f1"].isna().tolist() == [False, False, True]
    assert cleaned["f2"].isna().tolist() == [True, False, True]
    assert cleaned["f3"].isna().tolist() == [False, False, True]
    assert str(cleaned["ts_utc"].dt.tz) == "UTC"
    assert cleaned["ts_utc"].iloc[1] == pd.Timestamp("2026-11-25T18:11:00Z")
    assert cleaned["ts_utc"].dtype.unit == "us"


def test_clean_does_not_mutate_its_input() -> None:
    raw = raw_frame()
    before = raw.copy()
    clean(raw)
    pd.testing.assert_frame_equal(raw, before)


def test_normalize_uses_the_given_statistics() -> None:
    out = normalize(clean(raw_frame()), STATS)
    assert out["f1_z"].tolist() == [1.0, -1.0, 0.0]
    assert out["f2_z"].tolist() == [0.0, 1.5, 0.0]
    assert out["f3_z"].tolist() == [1.0, -1.0, 0.0]


def test_normalize_flags_imputed_values_and_keeps_raw_missing() -> None:
    out = normalize(clean(raw_frame()), STATS)
    assert out["f1_imputed"].tolist() == [False, False, True]
    assert out["f2_imputed"].tolist() == [True, False, True]
    assert out["f2"].isna().tolist() == [True, False, True]


def test_normalize_of_one_row_does_not_depend_on_the_others() -> None:
    frame = clean(raw_frame())
    alone = normalize(frame.iloc[[1]], STATS)
    together = normalize(frame, STATS).iloc[[1]]
    pd.testing.assert_frame_equal(alone, together)


def test_batch_stats_reproduce_the_case_study() -> None:
    frame = clean(raw_frame())
    stats = batch_stats(frame)
    assert stats["f1"].mean == 10.0
    assert stats["f1"].std == pytest.approx(np.std([12.0, 8.0], ddof=1))
    # one value of f2 only: no spread, std falls back to 1 so its z-scores are 0
    assert stats["f2"] == FeatureStats(1.5, 1.0)


def test_batch_stats_of_an_empty_frame() -> None:
    stats = batch_stats(clean(raw_frame()).iloc[0:0])
    assert stats["f1"] == FeatureStats(0.0, 1.0)


def test_key_order_sorts_rows_by_event_id_keeping_each_row_whole_and_duplicates_in_arrival_order() -> None:
    frame = pd.DataFrame(
        {"event_id": pd.Series(["c", "a", "b", "a", "B"], dtype="string"), "f1": [3.0, 1.0, 2.0, 1.5, 0.5]}
    )
    ordered = key_order(frame)
    assert list(ordered["event_id"]) == ["B", "a", "a", "b", "c"]
    assert list(ordered["f1"]) == [0.5, 1.0, 1.5, 2.0, 3.0]
    assert list(ordered.index) == [0, 1, 2, 3, 4]
    assert list(frame["event_id"]) == ["c", "a", "b", "a", "B"]  # the input is left as it was


def test_key_order_returns_a_frame_already_in_order_as_it_is() -> None:
    frame = pd.DataFrame({"event_id": pd.Series(["a", "b", "c"], dtype="string"), "f1": [1.0, 2.0, 3.0]})
    assert key_order(frame) is frame
