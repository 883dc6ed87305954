"""The trigger that waits, in Airflow's triggerer, until a stream interval is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from etlml.ingest.stream import Window, client_options
from etlml.interval import Interval


class StreamWindowTrigger(BaseTrigger):
    """Fires once the Redis server's clock, or the stream's last id, is past the interval's end plus
    the grace; asks the server every ``poll_seconds`` at most (sooner when the end is nearer)."""

    def __init__(
        self, conn_id: str, key: str, *, start: str, end: str, grace_seconds: float, poll_seconds: float = 5.0
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.conn_id = conn_id
        self.key = key
        self.start = start
        self.end = end
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "key": self.key,
                "start": self.start,
                "end": self.end,
                "grace_seconds": self.grace_seconds,
                "poll_seconds": self.poll_seconds,
            },
        )

    @property
    def interval(self) -> Interval:
        return Interval(datetime.fromisoformat(self.start), datetime.fromisoformat(self.end))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import redis.asyncio
        from airflow.sdk import BaseHook

        conn = await BaseHook.aget_connection(self.conn_id)
        client = redis.asyncio.Redis(**client_options(conn))
        try:
            while True:
                window = await self._window(client)
                if window.closed:
                    yield TriggerEvent(  # type: ignore[no-untyped-call]
                        {"server_ms": window.server_ms, "last_ms": window.last_ms}
                    )
                    return
                self.log.info("stream interval %s closes in %.1f s", self.interval.key, window.wait_seconds)
                await asyncio.sleep(min(self.poll_seconds, max(0.1, window.wait_seconds)))
        finally:
            await client.aclose()

    async def _window(self, client: Any) -> Window:
        import redis

        seconds, micros = await client.time()
        try:
            last = (await client.xinfo_stream(self.key)).get("last-generated-id") or b"0-0"
        except redis.ResponseError as exc:
            if "no such key" not in str(exc):
                raise
            last = b"0-0"
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return Window.of(self.interval, timedelta(seconds=self.grace_seconds), now_ms, last)
