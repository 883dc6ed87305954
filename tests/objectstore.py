"""A real S3-compatible server for the tests: moto's standalone server (``moto[server]`` from PyPI;
MinIO is not installable where this project is tested), started as a subprocess on a free local port."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

# Placeholder credentials: moto accepts any; nothing here reaches AWS.
ACCESS_KEY, SECRET_KEY, REGION = "etlml-test", "etlml-test", "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def s3_server() -> Iterator[str]:
    """Start the server, yield its endpoint URL, stop it afterwards."""
    port = _free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    # the server logs every request on stderr: to a file, never a pipe nobody reads (once the pipe's
    # buffer is full, every request thread blocks on its log line and the server stops answering)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()  # noqa: S310 - local
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        pytest.fail(f"moto_server did not start on port {port}: {log.read()[-2000:]!r}")
                    time.sleep(0.1)
            _forget_filesystems()
            yield endpoint
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            _forget_filesystems()


def _forget_filesystems() -> None:
    """Drop the S3 filesystems this process made (Airflow's object stores and fsspec's instances):
    they hold the endpoint of the server they were made for, which the next server does not share."""
    import s3fs
    from airflow.sdk.io import store

    store._STORE_CACHE.clear()
    s3fs.S3FileSystem.clear_instance_cache()


def client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def airflow_connection(endpoint: str) -> str:
    """``AIRFLOW_CONN_AWS_DEFAULT`` for the server: the Amazon provider's ``aws`` type with its endpoint."""
    return f"aws://{ACCESS_KEY}:{SECRET_KEY}@/?region_name={REGION}&endpoint_url={quote(endpoint, safe='')}"


def upload(s3: Any, bucket: str, folder: Path, prefix: str) -> list[str]:
    """Every file under ``folder`` to ``prefix/<relative path>``; returns the keys."""
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys
