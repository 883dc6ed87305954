"""Which shard an event goes to: stable, balanced, and the same for every record of one id."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from etlml.ingest.shards import shard_count, shard_of
from etlml.settings import SettingsError


def test_shard_count_is_one_per_shard_size_records() -> None:
    assert [shard_count(n, 100) for n in (0, 1, 100, 101, 1000)] == [1, 1, 1, 2, 10]
    with pytest.raises(SettingsError, match="shard_size must be >= 1"):
        shard_count(10, 0)


MASK = 2**64 - 1


def reference_shard(event_id: str, shards: int) -> int:
    """The definition ``shard_of`` vectorizes, one id at a time in plain Python."""
    data = event_id.encode("utf-8")
    h = (sum(b * pow(1_099_511_628_211, i, 2**64) for i, b in enumerate(data)) + len(data)) & MASK
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 29
    return h % shards


TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=130)  # encodable as UTF-8


@given(ids=st.lists(TEXT, min_size=1, max_size=30), shards=st.integers(1, 1000))
def test_shards_follow_the_definition(ids: list[str], shards: int) -> None:
    # the definition must not change: a run's files are read by the shard index they were written for
    assert shard_of(pd.Series(ids, dtype="string"), shards).tolist() == [
        reference_shard(i, shards) for i in ids
    ]


def test_shards_are_balanced() -> None:
    ids = pd.Series([f"evt-{i:07d}" for i in range(70_000)], dtype="string")
    counts = np.bincount(shard_of(ids, 7).astype(np.int64), minlength=7)
    assert counts.min() > 9_500 and counts.max() < 10_500


@given(ids=st.lists(TEXT, min_size=1, max_size=50), shards=st.integers(1, 9))
def test_an_id_has_one_shard_wherever_it_appears(ids: list[str], shards: int) -> None:
    together = shard_of(pd.Series(ids, dtype="string"), shards)
    alone = [int(shard_of(pd.Series([i], dtype="string"), shards)[0]) for i in ids]
    assert together.tolist() == alone
    assert ((together >= 0) & (together < shards)).all()
