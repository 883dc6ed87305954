"""Parquet files under the storage root, through ObjectStoragePath."""

import signal
import subprocess
import sys
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


RUN_ID = "manual__2026-11-25T18:20:00+00:00"


def test_run_folder_is_keyed_by_dag_interval_and_run(tmp_path: Path) -> None:
    root = tmp_path.as_uri()
    folder = storage.run_folder(root, "dag_a", INTERVAL, RUN_ID)
    interval = f"{root}/dag_a/20261125T181000Z_20261125T182000Z"
    assert str(folder.parent) == interval
    assert folder.name.startswith("manual__2026-11-25T18_20_00_00_00-")  # readable, and safe in any store
    scheduled = storage.run_folder(root, "dag_a", INTERVAL, "scheduled__2026-11-25T18:20:00+00:00")
    assert scheduled != folder and scheduled.parent == folder.parent
    # run ids that differ only in characters a path cannot hold still get folders of their own
    assert storage.run_folder(root, "dag_a", INTERVAL, "a:b") != storage.run_folder(
        root, "dag_a", INTERVAL, "a+b"
    )
    assert storage.run_folder(root, "dag_a", INTERVAL, RUN_ID) == folder


def test_a_reader_never_sees_a_half_written_file(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=100).events(INTERVAL)
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "e.parquet"
    before = write_frame(events, path, EVENT)
    with storage.FrameWriter(path, EVENT) as out:
        out.write(events.iloc[:5])
        # while the new file is being written, the name still holds the earlier file, whole
        assert storage.read_frame(before).shape == events.shape
    assert out.ref is not None and out.ref.rows == 5 and out.ref.path == before.path
    assert len(storage.read_frame(out.ref)) == 5
    assert [p.name for p in Path(str(path.parent).removeprefix("file://")).iterdir()] == ["e.parquet"]


def test_a_writer_killed_mid_file_leaves_the_earlier_file_whole(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=100).events(INTERVAL)
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "e.parquet"
    before = write_frame(events, path, EVENT)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert storage.read_frame(before).shape == events.shape  # the name never held a partial file


KILLED_WRITER = """
import sys, time
from airflow.sdk import ObjectStoragePath
from etlml import storage
from etlml.errors import PermanentError
from etlml.ingest.simulator import SimulatedSource
from etlml.records import EVENT
from tests.integration.test_storage import INTERVAL
events = SimulatedSource(seed=5, events_per_interval=1000).events(INTERVAL)
with storage.FrameWriter(ObjectStoragePath(sys.argv[1]), EVENT) as out:
    out.write(events)
    print("writing", flush=True)
    time.sleep(60)
"""


def test_round_trip_keeps_types_and_values(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=100).events(INTERVAL)
    ref = write_frame(
        events, storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "e.parquet", EVENT
    )
    assert ref.rows == 100
    assert storage.FileRef.from_xcom(ref.to_xcom()) == ref
    back = storage.read_frame(ref)
    pd.testing.assert_frame_equal(back, events, check_dtype=False)
    assert back["ts_utc"].dtype == events["ts_utc"].dtype


def test_same_frame_writes_the_same_bytes(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=100).events(INTERVAL)
    folder = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID)
    assert (
        write_frame(events, folder / "a.parquet", EVENT).sha256
        == write_frame(events, folder / "b.parquet", EVENT).sha256
    )


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=10).events(INTERVAL)
    ref = write_frame(
        events, storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "e.parquet", EVENT
    )
    other = write_frame(
        events.iloc[:5], storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "x.parquet", EVENT
    )
    Path(ref.path.removeprefix("file://")).write_bytes(Path(other.path.removeprefix("file://")).read_bytes())
    with pytest.raises(storage.StorageIntegrityError, match="clear the upstream task"):
        storage.read_frame(ref)


def test_interval_later_gets_its_own_folder(tmp_path: Path) -> None:
    later = Interval(INTERVAL.end, INTERVAL.end + timedelta(minutes=10))
    root = tmp_path.as_uri()
    assert storage.run_folder(root, "d", INTERVAL, RUN_ID) != storage.run_folder(root, "d", later, RUN_ID)


def test_a_file_written_in_parts_reads_back_a_row_group_at_a_time(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=1000).events(INTERVAL)
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "b.parquet"
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
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "empty.parquet"
    with storage.FrameWriter(path, EVENT) as out:
        pass
    assert out.ref is not None and out.ref.rows == 0
    [back] = list(storage.read_frames(out.ref))
    assert list(back.columns) == list(empty.columns) and len(back) == 0


def test_frames_of_a_changed_file_are_refused(tmp_path: Path) -> None:
    events = SimulatedSource(seed=5, events_per_interval=10).events(INTERVAL)
    path = storage.run_folder(tmp_path.as_uri(), "d", INTERVAL, RUN_ID) / "c.parquet"
    with storage.FrameWriter(path, EVENT) as out:
        out.write(events)
    assert out.ref is not None
    write_frame(events.iloc[:5], path, EVENT)
    with pytest.raises(storage.StorageIntegrityError, match="clear the upstream task"):
        next(storage.read_frames(out.ref))
