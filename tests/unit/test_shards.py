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


KEYS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "bb", "c\u00e9", "d" * 40]), st.sampled_from(["x.csv", "y.csv"])),
    max_size=40,
)


@pytest.mark.parametrize("hashes", ["real", "all_equal", "modulo_3"])
@given(keys=KEYS)
def test_extract_compares_only_ids_whose_hash_repeats_with_the_same_verdicts(
    keys: list[tuple[str, str]], hashes: str
) -> None:
    """extract resolves a shard's duplicates by comparing only the ids whose 64-bit hash occurs
    twice: with every hash equal, or many colliding, its verdicts are still the contract's over all
    the keys (the pre-filter only narrows what is compared)."""
    import pyarrow as pa

    from etlml.ingest import contract
    from etlml.steps import extract

    table = pa.table(
        {
            "event_id": [k for k, _ in keys],
            "source_file": [f for _, f in keys],
            "row_number": pa.array(range(len(keys)), pa.int64()),
        }
    )
    parts = [extract._keys(table.slice(0, len(keys) // 2)), extract._keys(table.slice(len(keys) // 2))]
    real = extract.id_hashes
    fake = {
        "real": real,
        "all_equal": lambda ids: np.zeros(len(ids), np.uint64),
        "modulo_3": lambda ids: real(ids) % np.uint64(3),
    }[hashes]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(extract, "id_hashes", fake)
        found = extract._superseded(parts)
    expected = contract.superseded(table["event_id"], table["source_file"], table["row_number"])
    if found is None:
        assert not len(expected.rows)
    else:
        assert found.rows.tolist() == expected.rows.tolist()
        assert found.kept_file.tolist() == expected.kept_file.tolist()
        assert found.kept_row.tolist() == expected.kept_row.tolist()
