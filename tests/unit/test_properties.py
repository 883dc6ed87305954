"""Property tests: normalization is per-row and invertible; the source is deterministic."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from etlml.features.stats import FeatureStats
from etlml.features.transform import batch_stats, normalize
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
maybe_missing = st.one_of(finite, st.just(float("nan")))
stats_strategy = st.fixed_dictionaries(
    {f: st.builds(FeatureStats, finite, st.floats(min_value=1e-3, max_value=1e4)) for f in ("f1", "f2", "f3")}
)
frames = data_frames(
    [
        column("f1", elements=maybe_missing),
        column("f2", elements=maybe_missing),
        column("f3", elements=maybe_missing),
    ],
    index=range_indexes(min_size=1, max_size=30),
)


@given(frame=frames, stats=stats_strategy, data=st.data())
def test_a_rows_z_score_does_not_depend_on_its_batch(
    frame: pd.DataFrame, stats: dict, data: st.DataObject
) -> None:
    row = data.draw(st.integers(0, len(frame) - 1))
    alone = normalize(frame.iloc[[row]], stats)
    in_batch = normalize(frame, stats).iloc[[row]]
    pd.testing.assert_frame_equal(alone, in_batch)


@given(frame=frames, stats=stats_strategy)
def test_z_scores_invert_to_the_imputed_values(frame: pd.DataFrame, stats: dict) -> None:
    out = normalize(frame, stats)
    for f, s in stats.items():
        restored = out[f"{f}_z"] * s.std + s.mean
        expected = frame[f].fillna(s.mean)
        np.testing.assert_allclose(restored, expected, rtol=1e-9, atol=1e-6 * (1 + abs(s.mean)))
        assert (out[f"{f}_imputed"] == frame[f].isna()).all()
        assert (out.loc[out[f"{f}_imputed"], f"{f}_z"] == 0).all()


@given(frame=frames)
def test_batch_statistics_always_give_finite_z_scores(frame: pd.DataFrame) -> None:
    out = normalize(frame, batch_stats(frame))
    assert np.isfinite(out[["f1_z", "f2_z", "f3_z"]].to_numpy()).all()


@given(frame=frames, data=st.data())
def test_batch_statistics_do_not_depend_on_how_the_batch_is_split(
    frame: pd.DataFrame, data: st.DataObject
) -> None:
    # a sharded run computes them over shards in another order: the result must be bit-identical
    order = data.draw(st.permutations(range(len(frame))))
    cut = data.draw(st.integers(0, len(frame)))
    shuffled = frame.iloc[list(order)]
    parts = [shuffled.iloc[:cut], shuffled.iloc[cut:]]
    assert batch_stats(lambda: iter(parts)) == batch_stats(frame)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**63),
    start=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(1, 24 * 60),
    batch=st.integers(0, 300),
)
def test_source_is_a_pure_function_of_its_inputs(
    seed: int, start: datetime, minutes: int, batch: int
) -> None:
    interval = Interval(start, start + timedelta(minutes=minutes))
    first = SimulatedSource(seed, batch).events(interval)
    pd.testing.assert_frame_equal(first, SimulatedSource(seed, batch).events(interval))
    assert len(first) == batch
    assert first["event_id"].is_unique
    assert ((first["ts_utc"] >= interval.start) & (first["ts_utc"] < interval.end)).all()
