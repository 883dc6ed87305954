"""The simulator's ground truth: labels of exactly the events it made, `delay` intervals later,
deterministic, close to baseline_v1 but beatable; and the shift of feature means for drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from etlml.ingest.simulator import SimulatedLabels, SimulatedSource, ground_truth
from etlml.interval import Interval

LABELLED = Interval(datetime(2026, 11, 25, 18, 0, tzinfo=UTC), datetime(2026, 11, 25, 18, 10, tzinfo=UTC))
TEN = timedelta(minutes=10)


def later(interval: Interval, k: int) -> Interval:
    return Interval(interval.start + TEN * k, interval.end + TEN * k)


def baseline(events: pd.DataFrame) -> np.ndarray:
    """baseline_v1's score of raw events (a missing f2 imputed with its mean, 0)."""
    z1 = (events["f1"] - 10) / 2
    z3 = (events["f3"] - 100) / 10
    return np.asarray(0.3 * z1 + 0.2 * events["f2"].fillna(0.0) + 0.5 * z3)


def test_the_labels_given_in_i_plus_delay_are_those_of_the_events_of_i() -> None:
    source = SimulatedSource(seed=7, events_per_interval=300)
    labels = SimulatedLabels(source, delay=3)
    events = source.events(LABELLED)
    given = labels.labels(later(LABELLED, 3))
    assert labels.labelled(later(LABELLED, 3)) == LABELLED
    assert given["event_id"].tolist() == events["event_id"].tolist()
    assert (given["observed_at"] - events["ts_utc"] == 3 * TEN).all()
    assert given["observed_at"].min() >= later(LABELLED, 3).start
    assert given["observed_at"].max() < later(LABELLED, 3).end
    assert np.isfinite(given["y_true"]).all()


def test_labels_are_deterministic_from_seed_and_event() -> None:
    one = SimulatedLabels(SimulatedSource(7, 300), 3).labels(later(LABELLED, 3))
    again = SimulatedLabels(SimulatedSource(7, 300), 3).labels(later(LABELLED, 3))
    pd.testing.assert_frame_equal(one, again)
    other_seed = SimulatedLabels(SimulatedSource(8, 300), 3).labels(later(LABELLED, 3))
    assert not np.allclose(one["y_true"], other_seed["y_true"])
    # another delay gives the same events' labels in another interval, with the same values
    two_late = SimulatedLabels(SimulatedSource(7, 300), 2).labels(later(LABELLED, 2))
    assert two_late["y_true"].tolist() == one["y_true"].tolist()


def test_labels_across_chunks_match_the_events_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SimulatedSource, "chunk_rows", 70)
    source = SimulatedSource(3, 250)
    given = SimulatedLabels(source, 1).labels(later(LABELLED, 1))
    assert given["event_id"].tolist() == source.events(LABELLED)["event_id"].tolist()
    assert given["y_true"].is_unique


def test_the_delay_is_at_least_one_interval() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SimulatedLabels(SimulatedSource(1, 10), 0)


def test_ground_truth_is_close_to_the_baseline_but_not_equal() -> None:
    source = SimulatedSource(11, 5000)
    events = source.events(LABELLED)
    y = SimulatedLabels(source, 3).labels(later(LABELLED, 3))["y_true"].to_numpy()
    residual = y - baseline(events)
    assert np.corrcoef(y, baseline(events))[0, 1] > 0.85  # close
    assert 0.15 < np.mean(np.abs(residual)) < 0.4  # but not equal: the interaction and the noise
    present = events["f2"].notna().to_numpy()
    noise_free = ground_truth(
        events["f1"].to_numpy(), events["f2"].to_numpy(), events["f3"].to_numpy(), np.zeros(len(events))
    )
    assert np.std((y - noise_free)[present]) == pytest.approx(0.1, rel=0.1)  # the documented noise


def test_a_model_that_learns_the_interaction_beats_the_baseline() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    source = SimulatedSource(5, 6000)
    events = source.events(LABELLED)
    y = SimulatedLabels(source, 3).labels(later(LABELLED, 3))["y_true"].to_numpy()
    x = events[["f1", "f2", "f3"]].to_numpy()
    train, test = slice(0, 4000), slice(4000, None)
    model = HistGradientBoostingRegressor(random_state=0).fit(x[train], y[train])
    challenger_mae = np.mean(np.abs(model.predict(x[test]) - y[test]))
    baseline_mae = np.mean(np.abs(baseline(events)[test] - y[test]))
    assert challenger_mae < 0.8 * baseline_mae


def test_no_shift_leaves_the_events_as_they_were() -> None:
    plain = SimulatedSource(7, 300).events(LABELLED)
    pd.testing.assert_frame_equal(SimulatedSource(7, 300, {}).events(LABELLED), plain)
    pd.testing.assert_frame_equal(SimulatedSource(7, 300, {"f1": 0.0}).events(LABELLED), plain)


def test_a_shift_moves_one_feature_and_nothing_else() -> None:
    plain = SimulatedSource(7, 2000).events(LABELLED)
    shifted = SimulatedSource(7, 2000, {"f3": 20.0, "f1": -3.0}).events(LABELLED)
    np.testing.assert_allclose(shifted["f3"], plain["f3"] + 20)
    np.testing.assert_allclose(shifted["f1"], plain["f1"] - 3)
    pd.testing.assert_series_equal(shifted["f2"], plain["f2"])
    pd.testing.assert_series_equal(shifted["event_id"], plain["event_id"])
    assert shifted["f3"].mean() == pytest.approx(120, abs=1)


def test_labels_of_shifted_events_follow_the_shifted_features() -> None:
    shift = {"f3": 20.0}
    source = SimulatedSource(7, 2000, shift)
    events = source.events(LABELLED)
    y = SimulatedLabels(source, 3).labels(later(LABELLED, 3))["y_true"].to_numpy()
    present = events["f2"].notna().to_numpy()
    expected = ground_truth(
        events["f1"].to_numpy(), events["f2"].to_numpy(), events["f3"].to_numpy(), np.zeros(len(events))
    )
    assert np.max(np.abs((y - expected)[present])) < 0.6  # noise only (std 0.1): the truth of these events
    unshifted = SimulatedLabels(SimulatedSource(7, 2000), 3).labels(later(LABELLED, 3))["y_true"].to_numpy()
    assert np.mean(y - unshifted) == pytest.approx(1.0, abs=0.1)  # z3 + 2: 0.5·2 on average


def test_a_shift_of_an_unknown_feature_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown features"):
        SimulatedSource(1, 10, {"f9": 1.0})
