"""One interval of a Redis stream, for the pipeline to read end to end (bench/landing.py runs it).

The stream holds the simulator's ``events`` events of one past interval as entries added with explicit
ids spread over it (as if they had arrived over those ten minutes), under a key of its own in the Redis
database of ``ETLML_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/13``), deleted afterwards.
The entries are sent as Redis protocol through ``redis-cli --pipe``, in about a third of the time XADDs
from a Python pipeline take; what the pipeline then reads is timed in its extract step: the range read
and the data contract, as in a run.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

REDIS_URL = os.environ.get("ETLML_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def _resp(key: str, chunk: pd.DataFrame, ids: list[str]) -> bytes:
    """XADD commands for the rows of ``chunk`` with entry ids ``ids``, in the Redis protocol; an
    entry has no ``f2`` where the event's is missing."""
    head = f"$4\r\nXADD\r\n${len(key)}\r\n{key}\r\n"
    events = chunk["event_id"].tolist()
    ts = chunk["ts_utc"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").tolist()
    f1 = chunk["f1"].to_numpy().astype(str).tolist()
    f3 = chunk["f3"].to_numpy().astype(str).tolist()
    f2 = [
        "" if v == "nan" else f"$2\r\nf2\r\n${len(v)}\r\n{v}\r\n" for v in chunk["f2"].to_numpy().astype(str)
    ]
    return "".join(
        f"*{13 if f else 11}\r\n{head}${len(i)}\r\n{i}\r\n$8\r\nevent_id\r\n${len(e)}\r\n{e}\r\n"
        f"$6\r\nts_utc\r\n${len(t)}\r\n{t}\r\n$2\r\nf1\r\n${len(a)}\r\n{a}\r\n$2\r\nf3\r\n${len(c)}\r\n{c}\r\n{f}"
        for i, e, t, a, c, f in zip(ids, events, ts, f1, f3, f2, strict=True)
    ).encode()


def fill(key: str, ctx: Any, events: int) -> float:
    """Add the simulator's events of ``ctx``'s interval as entries spread over it; returns seconds."""
    from etlml.ingest.simulator import SimulatedSource
    from etlml.ingest.stream import to_ms

    started = time.perf_counter()
    start_ms = to_ms(ctx.interval.start)
    per_ms = max(1, math.ceil(events / (to_ms(ctx.interval.end) - start_ms)))
    command = ["redis-cli", "-u", REDIS_URL, "--pipe"]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=False) as pipe:
        assert pipe.stdin is not None and pipe.stdout is not None
        n = 0
        for chunk in SimulatedSource(20_240_601, events)._chunks(ctx.interval):
            k = np.arange(n, n + len(chunk))
            ids = [f"{ms}-{seq}" for ms, seq in zip(start_ms + k // per_ms, k % per_ms, strict=True)]
            pipe.stdin.write(_resp(key, chunk, ids))
            n += len(chunk)
        pipe.stdin.close()
        report = pipe.stdout.read().decode()
    if pipe.returncode != 0 or f"errors: 0, replies: {events}" not in report:
        raise RuntimeError(f"filling the stream {key} failed: {' '.join(command)} said {report!r}")
    return time.perf_counter() - started


@contextmanager
def filled_stream(ctx: Any, events: int) -> Iterator[tuple[dict[str, str], float]]:
    """A stream holding ``events`` entries of ``ctx``'s interval: the environment the pipeline reads it
    with and the seconds filling it took. The key is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    key = f"etlml-bench-{uuid.uuid4().hex[:8]}:events"
    try:
        filled = fill(key, ctx, events)
        print(f"\nstream {key} filled with {events:,} entries in {filled:.1f} s", flush=True)
        env = {"ETLML_SOURCE": "redis_stream", "AIRFLOW_CONN_EVENTS": REDIS_URL, "ETLML_STREAM_KEY": key}
        yield env, filled
    finally:
        client.delete(key)
