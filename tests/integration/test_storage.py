"""Parquet files under the storage root, through ObjectStoragePath."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from etlml import storage
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.records import EVENT
from tests.helpers import write_frame

INTERVAL = Interval(datetime(2026, 11, 25, 18, 10, tzinfo=UTC), datetime(2026, 11, 25, 18, 20, tzinfo=UTC))


def test_run_folder_is_keyed_by_dag_and_interval(tmp_path: Path) -> None:
    folder = storage.run_folder(tmp_path.as_uri(), "dag_a", INTERVAL)
    assert str(folder) == f"{tmp_path.as_uri()}/dag_a/20261125T181000Z_20261125T182000Z"


def test_round_trip_keeps_types_and_values(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=100).events(INTERVAL)
    ref = write_frame(events, storage.run_folder(tmp_path.as_uri(), "d", INTERVAL) / "e.parquet", EVENT)
    assert ref.rows == 100
    assert storage.FileRef.from_xcom(ref.to_xcom()) == ref
    back = storage.read_frame(ref)
    pd.testing.assert_frame_equal(back, events, check_dtype=False)
    assert back["ts_utc"].dtype == events["ts_utc"].dtype


def test_same_frame_writes_the_same_bytes(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=100).events(INTERVAL)
    folder = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL)
    assert (
        write_frame(events, folder / "a.parquet", EVENT).sha256
        == write_frame(events, folder / "b.parquet", EVENT).sha256
    )


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=10).events(INTERVAL)
    ref = write_frame(events, storage.run_folder(tmp_path.as_uri(), "d", INTERVAL) / "e.parquet", EVENT)
    other = write_frame(
        events.iloc[:5], storage.run_folder(tmp_path.as_uri(), "d", INTERVAL) / "x.parquet", EVENT
    )
    Path(ref.path.removeprefix("file://")).write_bytes(Path(other.path.removeprefix("file://")).read_bytes())
    with pytest.raises(storage.StorageIntegrityError, match="clear the upstream task"):
        storage.read_frame(ref)


def test_interval_later_gets_its_own_folder(tmp_path: Path) -> None:
    later = Interval(INTERVAL.end, INTERVAL.end + timedelta(minutes=10))
    root = tmp_path.as_uri()
    assert storage.run_folder(root, "d", INTERVAL) != storage.run_folder(root, "d", later)


def test_a_file_written_in_parts_reads_back_a_row_group_at_a_time(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=1000).events(INTERVAL)
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL) / "b.parquet"
    with storage.FrameWriter(path, EVENT) as out:
        for start in range(0, 1000, 300):
            out.write(events.iloc[start : start + 300])
        out.write(events.iloc[:0])
    assert out.ref is not None and out.ref.rows == 1000
    frames = list(storage.read_frames(out.ref, rows=400))
    assert [len(f) for f in frames] == [400, 400, 200]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), events, check_dtype=False)
    assert storage.read_table(out.ref, columns=["event_id"]).num_rows == 1000


def test_an_empty_file_still_has_its_columns(tmp_path: Path) -> None:
    empty = SimulatedSource(seed=5, events_per_interval=0).events(INTERVAL)
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL) / "empty.parquet"
    with storage.FrameWriter(path, EVENT) as out:
        pass
    assert out.ref is not None and out.ref.rows == 0
    [back] = list(storage.read_frames(out.ref))
    assert list(back.columns) == list(empty.columns) and len(back) == 0


def test_frames_of_a_changed_file_are_refused(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=10).events(INTERVAL)
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL) / "c.parquet"
    with storage.FrameWriter(path, EVENT) as out:
        out.write(events)
    assert out.ref is not None
    write_frame(events.iloc[:5], path, EVENT)
    with pytest.raises(storage.StorageIntegrityError, match="clear the upstream task"):
        next(storage.read_frames(out.ref))
