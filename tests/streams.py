"""A Redis stream of the tests' own on the local Redis: database 12, keys under a per-session prefix,
deleted afterwards (the server is shared: never FLUSHDB)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

REDIS_URL = os.environ.get("ETLML_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
PREFIX = f"etlml-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def client() -> Any:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    try:
        r.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"tests need the local Redis at {REDIS_URL} (set ETLML_TEST_REDIS_URL): {exc}")
    return r


@contextmanager
def stream_key(name: str) -> Iterator[str]:
    """A fresh key of this session's prefix, deleted afterwards."""
    key = f"{PREFIX}:{name}:{uuid.uuid4().hex[:6]}"
    r = client()
    try:
        yield key
    finally:
        r.delete(key)


def ms(moment: datetime) -> int:
    from etlml.ingest.stream import to_ms

    return to_ms(moment)


def add(r: Any, key: str, at: datetime, fields: dict[str, Any], seq: int = 0) -> str:
    """XADD with an explicit id: the entry arrived at ``at`` (sequence ``seq``)."""
    return str(r.xadd(key, fields, id=f"{ms(at)}-{seq}").decode())


def event(
    event_id: str, ts: datetime, f1: float = 10.0, f2: float = 0.5, f3: float = 100.0
) -> dict[str, str]:
    return {"event_id": event_id, "ts_utc": ts.isoformat(), "f1": repr(f1), "f2": repr(f2), "f3": repr(f3)}
