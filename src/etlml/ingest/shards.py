"""Sharding an interval by event id: every record of one id lands in the same shard (pure)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from etlml.errors import SettingsError

_HASH_BASE = np.uint64(1_099_511_628_211)  # the 64-bit FNV prime
_HASH_MIX = np.uint64(0xFF51AFD7ED558CCD)  # a 64-bit finalizer constant (MurmurHash3's fmix64)


def shard_count(records: int, shard_size: int) -> int:
    """Shards of an interval: one per ``shard_size`` records, at least one."""
    if shard_size < 1:
        raise SettingsError(f"shard_size must be >= 1, got {shard_size}")
    return max(1, -(-records // shard_size))


def shard_of(ids: pd.Series | pa.Array, shards: int) -> np.ndarray[Any, Any]:
    """The shard of each event id: :func:`id_hashes` modulo ``shards``. The definition must not
    change: a run's files are read by the shard they were written for."""
    return id_hashes(ids) % np.uint64(shards)


def id_hashes(ids: pd.Series | pa.Array) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """A 64-bit hash of each event id: a polynomial hash of its UTF-8 bytes, the same in every
    process and release (unlike Python's ``hash``), computed over the Arrow buffers a byte position
    at a time (several times faster than pandas' per-value hashing, in memory proportional to the
    number of ids; the time grows with the longest id, which the data contract bounds)."""
    arrow = pa.array(ids, from_pandas=True, type=pa.large_string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    _, offset_buffer, data_buffer = arrow.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[arrow.offset : arrow.offset + len(arrow) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = lengths.astype(np.uint64)
    power = np.uint64(1)
    shortest = int(lengths.min(initial=0))
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for position in range(int(lengths.max(initial=0))):
            if position < shortest:
                hashes += data[starts + position].astype(np.uint64) * power
            else:
                longer = lengths > position
                hashes[longer] += data[starts[longer] + position].astype(np.uint64) * power
            power *= _HASH_BASE
        hashes ^= hashes >> np.uint64(33)
        hashes *= _HASH_MIX
        hashes ^= hashes >> np.uint64(29)
    return hashes
