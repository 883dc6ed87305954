"""Files under an S3 storage root (moto's standalone server): a write that fails, or whose process is
killed, leaves the earlier object whole and nothing partial under the file's name."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from etlml import storage
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.records import EVENT
from tests import objectstore
from tests.helpers import write_frame

INTERVAL = Interval(datetime(2026, 11, 25, 18, 10, tzinfo=UTC), datetime(2026, 11, 25, 18, 20, tzinfo=UTC))
RUN_ID = "manual__2026-11-25T18:20:00+00:00"
PART = 5 << 20
"""S3's smallest multipart part: the writers below upload in parts of this size, so a file of a few
MiB is already a multipart upload with parts on the server when the write fails."""
LARGE = 250_000
"""Events whose row group is more than one part (about 30 bytes an event in the file)."""


class CallerFailed(RuntimeError):
    """What the writer's caller raises halfway through a file."""


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with objectstore.s3_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    name = f"etlml-{uuid.uuid4().hex[:12]}"
    client = objectstore.client(endpoint)
    client.create_bucket(Bucket=name)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", objectstore.airflow_connection(endpoint))
    return client, name


def _folder(name: str) -> Any:
    return storage.run_folder(f"s3://aws_default@{name}/storage", "d", INTERVAL, RUN_ID)


def _objects(client: Any, name: str) -> dict[str, str]:
    """Every object in the bucket: its key and its content's sha256."""
    listed = client.list_objects_v2(Bucket=name).get("Contents", [])
    return {
        o["Key"]: hashlib.sha256(client.get_object(Bucket=name, Key=o["Key"])["Body"].read()).hexdigest()
        for o in listed
    }


def _uploads(client: Any, name: str) -> list[str]:
    """The keys of the multipart uploads begun and neither completed nor aborted."""
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=name).get("Uploads", [])]


def _in_parts(path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(path.fs, "default_block_size", PART)


def test_a_failed_write_leaves_the_earlier_object_whole(bucket: tuple[Any, str]) -> None:
    client, name = bucket
    events = SimulatedSource(seed=5, events_per_interval=5).events(INTERVAL)
    path = _folder(name) / "e.parquet"
    before = write_frame(events, path, EVENT)
    stored = _objects(client, name)
    with pytest.raises(CallerFailed), storage.FrameWriter(path, EVENT) as out:
        out.write(events.iloc[:1])  # the first row group
        raise CallerFailed("the caller failed halfway through the file")
    assert out.ref is None
    assert _objects(client, name) == stored  # the earlier object, byte for byte, and nothing beside it
    assert storage.read_frame(before).shape == events.shape


def test_a_failed_first_write_leaves_no_object(bucket: tuple[Any, str]) -> None:
    client, name = bucket
    events = SimulatedSource(seed=5, events_per_interval=5).events(INTERVAL)
    with pytest.raises(CallerFailed), storage.FrameWriter(_folder(name) / "new.parquet", EVENT) as out:
        out.write(events.iloc[:1])
        raise CallerFailed("the caller failed halfway through the file")
    assert _objects(client, name) == {}


def test_a_failed_multipart_write_is_aborted(
    bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = bucket
    events = SimulatedSource(seed=5, events_per_interval=LARGE).events(INTERVAL)
    path = _folder(name) / "e.parquet"
    _in_parts(path, monkeypatch)
    before = write_frame(events.iloc[:5], path, EVENT)
    stored = _objects(client, name)
    with pytest.raises(CallerFailed), storage.FrameWriter(path, EVENT) as out:
        out.write(events)
        assert _uploads(client, name) == [path.key]  # a part is on the server
        raise CallerFailed("the caller failed halfway through the file")
    assert _objects(client, name) == stored
    assert _uploads(client, name) == []  # the parts are gone too
    assert len(storage.read_frame(before)) == 5
    after = write_frame(events, path, EVENT)  # the same write, not failing, completes in parts
    assert _uploads(client, name) == [] and len(storage.read_frame(after)) == LARGE


def test_a_writer_killed_mid_upload_leaves_the_earlier_object_whole(
    bucket: tuple[Any, str], endpoint: str
) -> None:
    client, name = bucket
    events = SimulatedSource(seed=5, events_per_interval=5).events(INTERVAL)
    path = _folder(name) / "e.parquet"
    before = write_frame(events, path, EVENT)
    stored = _objects(client, name)
    env = {**os.environ, "AIRFLOW_CONN_AWS_DEFAULT": objectstore.airflow_connection(endpoint)}
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert writer.stdout is not None
    for line in writer.stdout:  # Airflow logs to stdout too
        if line.strip() == "writing":
            break
    assert _uploads(client, name) == [path.key]  # killed with parts of the new file on the server
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert _objects(client, name) == stored
    assert storage.read_frame(before).shape == events.shape


KILLED_WRITER = f"""
import sys, time
from airflow.sdk import ObjectStoragePath
from etlml import storage
from etlml.ingest.simulator import SimulatedSource
from etlml.records import EVENT
from tests.integration.test_storage_s3 import INTERVAL
path = ObjectStoragePath(sys.argv[1])
path.fs.default_block_size = {PART}
events = SimulatedSource(seed=5, events_per_interval={LARGE}).events(INTERVAL)
with storage.FrameWriter(path, EVENT) as out:
    out.write(events)
    print("writing", flush=True)
    time.sleep(60)
"""
