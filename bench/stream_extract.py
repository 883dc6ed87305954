"""The extract step reading one interval from a Redis stream, next to the same step on the simulator.

The stream holds ``events`` entries of one past interval, added with explicit ids (as if they had
arrived over those ten minutes), under a key of its own in the Redis database of
``ETLML_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/13``), deleted afterwards. Both extracts
run in this process against the bench's warehouse; the stream's includes counting the range on the
server, paging it to the client and the data contract, as in a run.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from datetime import timedelta
from typing import Any

REDIS_URL = os.environ.get("ETLML_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
BATCH = 10_000


def fill(client: Any, key: str, ctx: Any, events: int) -> float:
    """Add the simulator's events of ``ctx``'s interval as entries spread over it; returns seconds."""
    from etlml.ingest.simulator import SimulatedSource
    from etlml.ingest.stream import to_ms

    started = time.perf_counter()
    start_ms = to_ms(ctx.interval.start)
    span_ms = to_ms(ctx.interval.end) - start_ms
    per_ms = max(1, math.ceil(events / span_ms))
    n = 0
    for chunk in SimulatedSource(20_240_601, events)._chunks(ctx.interval):
        for first in range(0, len(chunk), BATCH):
            part = chunk.iloc[first : first + BATCH]
            with client.pipeline(transaction=False) as pipe:
                for row in part.itertuples(index=False):
                    fields = {
                        "event_id": row.event_id,
                        "ts_utc": row.ts_utc.isoformat(),
                        "f1": repr(row.f1),
                        "f3": repr(row.f3),
                    }
                    if not math.isnan(row.f2):
                        fields["f2"] = repr(row.f2)
                    pipe.xadd(key, fields, id=f"{start_ms + n // per_ms}-{n % per_ms}")
                    n += 1
                pipe.execute()
    return time.perf_counter() - started


def stream_extract(events: int, ctx: Any, shard_size: int) -> dict[str, Any]:
    """Seconds and events/s of ``extract`` on the stream and on the simulator, same interval and size."""
    import redis

    from etlml.ingest.stream import RedisStreamSource
    from etlml.steps.extract import extract

    client = redis.Redis.from_url(REDIS_URL)
    key = f"etlml-bench-{uuid.uuid4().hex[:8]}:events"
    try:
        filled = fill(client, key, ctx, events)
        print(f"  stream filled with {events:,} entries in {filled:.1f} s")
        source = RedisStreamSource(client, key, timedelta(seconds=30))
        started = time.perf_counter()
        from_stream = extract(ctx, shard_size=shard_size, source=source)
        stream_s = time.perf_counter() - started
    finally:
        client.delete(key)
    started = time.perf_counter()
    simulated = extract(ctx, simulated_events=events, shard_size=shard_size)
    simulator_s = time.perf_counter() - started
    assert from_stream.plan.counts.accepted == simulated.plan.counts.accepted == events
    figures = {
        "events": events,
        "stream_s": stream_s,
        "stream_events_per_s": events / stream_s,
        "simulator_s": simulator_s,
        "simulator_events_per_s": events / simulator_s,
    }
    print(
        f"  extract from the Redis stream {stream_s:>8.2f} s {events / stream_s:>12,.0f} events/s\n"
        f"  extract from the simulator    {simulator_s:>8.2f} s {events / simulator_s:>12,.0f} events/s"
    )
    return figures
