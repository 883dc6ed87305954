"""Task ``wait_for_window``: a stream interval is read only once it is closed; until then the task
waits in Airflow's triggerer (deferred), not in a worker slot. Other sources pass at once.

Only ``airflow.sdk`` is imported at the top: the DAG file instantiates this operator when parsed.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


class WaitForStreamWindow(BaseOperator):
    """Succeeds once the run's interval is closed in the stream (``ETLML_SOURCE=redis_stream``):
    the Redis server's clock, or the stream's last entry id, past the interval's end plus
    ``ETLML_STREAM_GRACE_SECONDS``. Defers to :class:`~etlml.ingest.stream_trigger.StreamWindowTrigger`
    while it is open."""

    ui_color = "#fbe9e7"

    def __init__(self, *, poll_seconds: float = POLL_SECONDS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poll_seconds = poll_seconds

    def execute(self, context: Any) -> dict[str, int] | None:
        """Return if the window is closed (or the source is not a stream), else defer; a settings
        error (say, no ``events`` connection) fails at once, without retries. Returns (XCom) the
        server's clock and the stream's last id (ms) that showed the window closed."""
        from etlml.steps.run import fail_fast

        return fail_fast(self._wait)(context)

    def _wait(self, context: Any) -> dict[str, int] | None:
        from etlml import settings
        from etlml.ingest.stream import RedisStreamSource
        from etlml.ingest.stream_trigger import StreamWindowTrigger
        from etlml.steps.run import RunContext

        cfg = settings.load()
        if cfg.source != "redis_stream":
            log.info("ETLML_SOURCE=%s: nothing to wait for", cfg.source)
            return None
        run = RunContext.from_airflow(context)
        source = RedisStreamSource.from_connection(cfg.stream_conn_id, cfg.stream_key, cfg.stream_grace)
        window = source.window(run.interval)
        if window.closed:
            log.info("stream interval %s is closed", run.interval.key)
            return {"server_ms": window.server_ms, "last_ms": window.last_ms, "deferred": 0}
        log.info("stream interval %s closes in %.1f s; deferring", run.interval.key, window.wait_seconds)
        trigger = StreamWindowTrigger(
            cfg.stream_conn_id,
            cfg.stream_key,
            start=run.interval.start.isoformat(),
            end=run.interval.end.isoformat(),
            grace_seconds=cfg.stream_grace.total_seconds(),
            poll_seconds=self.poll_seconds,
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, int]:
        """Resumed from the trigger, whose event says when the window closed."""
        log.info("stream interval closed: %s", event)
        seen = event or {}
        return {
            "server_ms": int(seen.get("server_ms", 0)),
            "last_ms": int(seen.get("last_ms", 0)),
            "deferred": 1,
        }
