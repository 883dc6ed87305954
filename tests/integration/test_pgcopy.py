"""The NumPy binary COPY encoder, checked by PostgreSQL itself."""

import struct
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etlml.warehouse import pgcopy
from etlml.warehouse.writes import copy_frames

pytestmark = pytest.mark.db

COLUMNS = (("id", "text"), ("ts", "timestamptz"), ("x", "float8"), ("flag", "bool"), ("n", "int8"))


def load(conn: psycopg.Connection[Any], frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE t (id text, ts timestamptz, x float8, flag bool, n int8) ON COMMIT DROP"
        )
        copy_frames(cur, "t", COLUMNS, [frame])
        rows = cur.execute("SELECT id, ts, x, flag, n FROM t").fetchall()
    conn.rollback()
    return rows


def bits(x: float | None) -> bytes | None:
    """The IEEE 754 bits of a float: tells -0.0 from 0.0, which ``==`` does not."""
    return None if x is None else struct.pack(">d", x)


def test_values_and_nulls_arrive_exactly(conn: psycopg.Connection[Any]) -> None:
    frame = pd.DataFrame(
        {
            "id": pd.Series(["a", "", None, "ünïcødé ✓", "x" * 300], dtype="string"),
            "ts": pd.to_datetime(
                [
                    "2026-11-25T18:10:00.000001Z",
                    "1999-12-31T23:59:59Z",
                    None,
                    "2000-01-01T00:00:00Z",
                    "2100-01-01T00:00:00Z",
                ],
                utc=True,
                format="ISO8601",
            ),
            "x": [1.5, -0.0, np.nan, 1e308, 0.1 + 0.2],
            "flag": [True, False, True, False, True],
            "n": pd.Series([1, None, -(2**62), 0, 7], dtype="Int64"),
        }
    )
    rows = load(conn, frame)
    assert rows == [
        ("a", datetime(2026, 11, 25, 18, 10, 0, 1, tzinfo=UTC), 1.5, True, 1),
        ("", datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), -0.0, False, None),
        (None, None, None, True, -(2**62)),
        ("ünïcødé ✓", datetime(2000, 1, 1, tzinfo=UTC), 1e308, False, 0),
        ("x" * 300, datetime(2100, 1, 1, tzinfo=UTC), 0.1 + 0.2, True, 7),
    ]
    # -0.0 == 0.0 in Python, so the comparison above cannot see a lost sign: compare the bits
    assert [bits(r[2]) for r in rows] == [bits(x) for x in (1.5, -0.0, None, 1e308, 0.1 + 0.2)]


def test_an_empty_frame_copies_no_rows(conn: psycopg.Connection[Any]) -> None:
    frame = pd.DataFrame(
        {
            "id": pd.Series([], dtype="string"),
            "ts": pd.to_datetime([], utc=True),
            "x": [],
            "flag": pd.Series([], dtype=bool),
            "n": [],
        }
    )
    assert load(conn, frame) == []


def test_pieces_split_rows_but_not_values() -> None:
    frame = pd.DataFrame({"id": pd.Series([f"id{i}" for i in range(25)], dtype="string")})
    whole = b"".join(pgcopy.pieces(frame, [("id", "text")], size=1000))
    split = list(pgcopy.pieces(frame, [("id", "text")], size=7))
    assert [len(p) for p in split] != [len(whole)] and b"".join(split) == whole
    assert whole == pgcopy.encode(frame, [("id", "text")])


def test_unknown_types_and_naive_timestamps_are_refused() -> None:
    with pytest.raises(pgcopy.CopyEncodingError, match="no binary encoder"):
        pgcopy.encode(pd.DataFrame({"a": [1]}), [("a", "numeric")])
    with pytest.raises(pgcopy.CopyEncodingError, match="tz-aware"):
        pgcopy.encode(pd.DataFrame({"a": pd.to_datetime(["2026-01-01"])}), [("a", "timestamptz")])
    with pytest.raises(pgcopy.CopyEncodingError, match="text needs strings"):
        pgcopy.encode(pd.DataFrame({"a": [1, 2]}), [("a", "text")])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(
        st.one_of(st.none(), st.text(st.characters(exclude_characters="\x00"), max_size=40)), max_size=40
    ),
    data=st.data(),
)
def test_random_rows_round_trip(
    conn: psycopg.Connection[Any], ids: list[str | None], data: st.DataObject
) -> None:
    n = len(ids)
    xs = data.draw(st.lists(st.one_of(st.none(), st.floats(allow_nan=False)), min_size=n, max_size=n))
    flags = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    frame = pd.DataFrame(
        {
            "id": pd.Series(ids, dtype="string"),
            "ts": pd.to_datetime([datetime(2026, 1, 1, tzinfo=UTC)] * n, utc=True),
            "x": pd.Series([np.nan if x is None else x for x in xs], dtype="float64"),
            "flag": pd.Series(flags, dtype=bool),
            "n": pd.Series(range(n), dtype="int64"),
        }
    )
    rows = sorted(load(conn, frame), key=lambda r: r[4])
    assert [r[0] for r in rows] == ids
    assert [bits(r[2]) for r in rows] == [bits(x) for x in xs]  # -0.0 keeps its sign
    assert [r[3] for r in rows] == flags
