"""Events from a Redis stream: a data interval is the range of entry ids its bounds give, read page by page.

A Redis stream's entry ids are ``<milliseconds>-<sequence>``: the server's clock when the entry
arrived (unless the producer names an id). The interval ``[start, end)`` is therefore exactly the
entries ``XRANGE key <start ms>-0 (<end ms>-0``: a rerun reads the same entries, and there is no
consumer offset to commit or lose. An interval is read only once it is closed (the server's clock or
the stream's last id past its end plus the grace), and only while it is complete (no entry of it
trimmed or deleted); otherwise reading it raises.

Entries carry the fields ``event_id``, ``ts_utc``, ``f1``, ``f2``, ``f3`` as text; the data contract
judges them like any other record. The range is read once, a page at a time, each page parsed into
columns (:mod:`etlml.ingest.stream_entries`); how many entries the interval holds is known once it
is read. Provenance: ``source_file`` is the stream's key and ``row_number`` the entry id as one
number, ``ms * 1,000,000 + sequence`` (:func:`row_number`, :func:`entry_id`).
"""

from __future__ import annotations

import calendar
import gc
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

from etlml.errors import PermanentError, SettingsError
from etlml.ingest import stream_entries
from etlml.ingest.ledger import StreamRange
from etlml.ingest.stream_entries import FIELDS, StreamError, parse_id
from etlml.interval import Interval
from etlml.records import RECORD

log = logging.getLogger(__name__)

# One page of an id range counted on the server, for `etlml runs changed` (extract counts what it
# reads): the entries never cross the network.
_COUNT_PAGE = """
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
if #rows == 0 then return {0, ''} end
return {#rows, rows[#rows][1]}
"""


class StreamTrimmedError(PermanentError, RuntimeError):
    """Entries of the interval were trimmed or deleted: it can no longer be read completely."""


class StreamMissingError(PermanentError, RuntimeError):
    """The stream's key does not exist on the server: a misspelt ``ETLML_STREAM_KEY``, another
    database, or a stream deleted whole. Nothing is read, so nothing stored is touched."""


class WindowOpenError(RuntimeError):
    """The interval is not closed yet; reading it now could miss entries still to arrive (retried)."""


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exact (no float rounding; pendulum's datetimes too)."""
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


def id_range(interval: Interval) -> tuple[str, str]:
    """``XRANGE`` bounds of the interval: from ``<start ms>-0`` up to, excluding, ``<end ms>-0``."""
    return f"{to_ms(interval.start)}-0", f"({to_ms(interval.end)}-0"


@dataclass(frozen=True)
class Window:
    """Whether an interval is closed: the server's clock or the stream's last id (ms) past ``needed``."""

    server_ms: int
    last_ms: int
    needed_ms: int

    @property
    def closed(self) -> bool:
        return max(self.server_ms, self.last_ms) >= self.needed_ms

    @property
    def wait_seconds(self) -> float:
        """How long, by the server's clock, until the interval closes (0 when it is)."""
        return 0.0 if self.closed else (self.needed_ms - self.server_ms) / 1000

    @classmethod
    def of(cls, interval: Interval, grace: timedelta, server_ms: int, last_id: str | bytes) -> Window:
        return cls(server_ms, parse_id(last_id)[0], to_ms(interval.end + grace))


@dataclass(frozen=True)
class StreamInfo:
    """What ``XINFO STREAM`` says about the stream's history (all ids ``"0-0"`` if it does not exist)."""

    length: int
    entries_added: int
    first_id: str  # the oldest entry still held
    last_id: str  # the newest id ever added
    max_deleted_id: str  # the largest id removed by XDEL (XTRIM does not move it)

    @classmethod
    def of(cls, info: Mapping[str, Any]) -> StreamInfo:
        def text(name: str) -> str:
            value = info.get(name) or b"0-0"
            return value.decode() if isinstance(value, bytes) else str(value)

        return cls(
            int(info.get("length", 0)),
            int(info.get("entries-added", 0)),
            text("recorded-first-entry-id"),
            text("last-generated-id"),
            text("max-deleted-entry-id"),
        )

    def missing_from(self, interval: Interval) -> str | None:
        """Why entries of ``interval`` may have been removed, or ``None`` when it is complete."""
        start = (to_ms(interval.start), 0)
        if parse_id(self.max_deleted_id) >= start:
            return f"entries up to {self.max_deleted_id} were deleted (XDEL)"
        removed = self.entries_added - self.length
        oldest = self.first_id if self.length else _after(self.last_id)
        if removed > 0 and parse_id(oldest) > start:
            return f"the stream was trimmed: its oldest entry is {oldest}, {removed} entries were removed"
        return None


def _after(entry: str) -> str:
    ms, seq = parse_id(entry)
    return f"{ms}-{seq + 1}"


class RedisStreamSource:
    """The records of an interval from the Redis stream ``key``, in chunks of :attr:`chunk_rows` read
    in pages of :attr:`page_entries` entries: memory holds one chunk, however long the interval.

    ``client`` is a ``redis.Redis`` that returns bytes (``decode_responses=False``), so an entry that
    is not valid UTF-8 is quarantined rather than failing the run.
    """

    name = "redis_stream"

    def __init__(
        self,
        client: Any,
        key: str,
        grace: timedelta,
        *,
        page_entries: int = 10_000,
        chunk_rows: int = 250_000,
    ) -> None:
        self.client = client
        self.key = key
        self.grace = grace
        self.page_entries = page_entries
        self.chunk_rows = chunk_rows

    @property
    def ts_tolerance(self) -> timedelta:
        """How far an event's ``ts_utc`` may lie outside its arrival interval: the grace."""
        return self.grace

    @classmethod
    def from_connection(cls, conn_id: str, key: str, grace: timedelta) -> RedisStreamSource:
        return cls(connect(conn_id), key, grace)

    def info(self) -> StreamInfo:
        import redis

        try:
            return StreamInfo.of(self.client.xinfo_stream(self.key))
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                self.check_exists()  # says what the key holds instead
            if "no such key" not in str(exc):
                raise
            return StreamInfo(0, 0, "0-0", "0-0", "0-0")

    def where(self) -> str:
        """``host:port/db`` of the server, for messages."""
        kwargs = getattr(getattr(self.client, "connection_pool", None), "connection_kwargs", {})
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    def check_exists(self) -> None:
        """Raise :class:`StreamMissingError` unless the key exists (an empty stream is fine), and
        :class:`StreamError` if it holds something else than a stream."""
        kind = self.client.type(self.key)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind not in ("none", "stream"):
            raise StreamError(
                f"the key {self.key!r} on the Redis server {self.where()} holds a {kind}, not a stream: "
                "check ETLML_STREAM_KEY and the connection's database"
            )
        if kind == "none":
            raise StreamMissingError(
                f"the event stream {self.key!r} does not exist on the Redis server {self.where()}: check "
                "ETLML_STREAM_KEY and the connection's database (ETLML_STREAM_CONN_ID). Nothing was read "
                "and nothing stored was changed; an existing stream without entries in the interval is "
                "an empty interval"
            )

    def window(self, interval: Interval) -> Window:
        seconds, micros = self.client.time()
        return Window.of(interval, self.grace, int(seconds) * 1000 + int(micros) // 1000, self.info().last_id)

    def check_readable(self, interval: Interval) -> None:
        """Raise :class:`WindowOpenError` if the interval is not closed yet, :class:`StreamTrimmedError`
        if some of its entries are gone."""
        window = self.window(interval)
        self.check_exists()
        if not window.closed:
            raise WindowOpenError(
                f"the stream interval {interval.key} closes in {window.wait_seconds:.0f} s (its end plus "
                f"ETLML_STREAM_GRACE_SECONDS={self.grace.total_seconds():g}, by the Redis server's clock); "
                "it is read once closed"
            )
        self._check_complete(interval)

    def _check_complete(self, interval: Interval) -> None:
        why = self.info().missing_from(interval)
        if why:
            raise StreamTrimmedError(
                f"the interval {interval.key} of stream {self.key!r} is no longer complete: {why}. "
                "It is not read, so the rows stored for it stay as they are; the stream's retention "
                "(etlml stream trim) has passed it"
            )

    def first_entry_id(self, interval: Interval) -> str | None:
        """The id of the interval's first entry, or ``None`` if it has none."""
        low, high = id_range(interval)
        first = self.client.xrange(self.key, low, high, count=1)
        return first[0][0].decode() if first else None

    def entries_now(self, interval: Interval) -> StreamRange | None:
        """What the stream holds of the interval now: its first and last entry id and how many
        (``None`` when the key is gone, or retention has trimmed into the interval)."""
        if not self.client.exists(self.key) or self.info().missing_from(interval):
            return None
        low, high = id_range(interval)
        first = self.client.xrange(self.key, low, high, count=1)
        last = self.client.xrevrange(self.key, f"({to_ms(interval.end)}-0", low, count=1)
        return StreamRange(
            self.key,
            first[0][0].decode() if first else None,
            last[0][0].decode() if last else None,
            self._count(interval),
        )

    def _count(self, interval: Interval) -> int:
        count_page = self.client.register_script(_COUNT_PAGE)
        low, high = id_range(interval)
        total = 0
        while True:
            n, last = count_page(keys=[self.key], args=[low, high, self.page_entries])
            total += int(n)
            if int(n) < self.page_entries:
                return total
            low = "(" + (last.decode() if isinstance(last, bytes) else str(last))

    def _pages(self, interval: Interval) -> Iterator[pa.Table]:
        """The interval's entries as records (:func:`stream_entries.page_table`), an ``XRANGE`` reply
        of :attr:`page_entries` at a time; the range's end bounds every page, so an entry added
        meanwhile (after the interval) is never read. The next page is asked for as soon as a reply
        is in, so the server makes it while this one is parsed."""
        low, high = id_range(interval)
        with _Replies(self.client, self.key, high, self.page_entries) as replies:
            replies.ask(low)
            while True:
                with _collector_paused():
                    page = replies.answer()
                    full = len(page) == self.page_entries
                    if full:
                        replies.ask(b"(" + page[-1][0])
                    table = stream_entries.page_table(page) if page else None
                    del page
                if table is not None:
                    yield table
                if not full:
                    return

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]:
        """The interval's entries as records (:data:`etlml.records.RECORD`), in id order, a chunk of
        at least :attr:`chunk_rows` (whole pages) at a time; checks that the interval is closed and
        complete before reading, and complete again after (a trim while reading would otherwise go
        unnoticed)."""
        self.check_readable(interval)
        tables: list[pa.Table] = []
        rows = 0
        for table in self._pages(interval):
            tables.append(table)
            rows += table.num_rows
            if rows >= self.chunk_rows:
                yield stream_entries.frame(self.key, tables)
                tables, rows = [], 0
        if tables:
            yield stream_entries.frame(self.key, tables)
        self._check_complete(interval)

    def records(self, interval: Interval) -> pd.DataFrame:
        chunks = list(self.record_chunks(interval))
        return pd.concat(chunks, ignore_index=True) if chunks else RECORD.empty()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while a page is read and parsed: a reply is some ten objects
    an entry, none in a cycle (reference counting frees them), and the collections their number
    would set off, each walking every object of the process, took longer than the parsing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Replies:
    """``XRANGE`` pages of ``key`` up to ``high`` on a connection of ``client``'s pool of its own:
    :meth:`ask` sends the request of the page from ``low``, :meth:`answer` reads its reply as the
    server sent it (lists of bytes; no ``(id, dict)`` per entry, which cost more than the server's
    work), once more on a new connection if the connection failed. A connection left with a reply
    unread (an error, the reader stopped) is closed, not returned to the pool."""

    def __init__(self, client: Any, key: str, high: str, count: int) -> None:
        self.pool = client.connection_pool
        self.command = ("XRANGE", key, "", high, "COUNT", count)
        self.asked: str | bytes = ""
        self.conn: Any = None

    def __enter__(self) -> _Replies:
        self.conn = self.pool.get_connection()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if kind is not None:
            self.conn.disconnect()
        self.pool.release(self.conn)

    def ask(self, low: str | bytes) -> None:
        self.asked = low
        name, key, _, high, *rest = self.command
        self.conn.send_command(name, key, low, high, *rest)

    def answer(self) -> list[Any]:
        import redis

        try:
            reply = self.conn.read_response(disable_decoding=True)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("reading the stream %r: %s; asking again on a new connection", self.command[1], exc)
            self.conn.disconnect()
            self.ask(self.asked)
            reply = self.conn.read_response(disable_decoding=True)
        return list(reply)


def connect(conn_id: str) -> Any:
    """A ``redis.Redis`` (bytes, not decoded) from the Airflow connection ``conn_id``, the Redis
    provider's type: ``redis://[user:password@]host:6379/0``, the database from the URL's path or the
    extra ``db``."""
    import redis

    from etlml import settings

    uri = settings.connection_uri(conn_id)
    if uri is not None and uri.startswith("redis://"):  # as Airflow reads it, without importing Airflow
        return redis.Redis(**client_options(_UriConnection.parse(uri)))
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise SettingsError(
            f"the Airflow connection {conn_id!r} of the event stream is not defined: set "
            f"AIRFLOW_CONN_{conn_id.upper()}=redis://HOST:6379/0 (or ETLML_STREAM_CONN_ID to another "
            "connection of type redis)"
        ) from None
    return redis.Redis(**client_options(conn))


@dataclass(frozen=True)
class _UriConnection:
    """The fields of an Airflow connection that :func:`client_options` reads, from a URI decoded the way
    Airflow decodes ``AIRFLOW_CONN_<ID>``."""

    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str
    extra_dejson: dict[str, str]

    @classmethod
    def parse(cls, uri: str) -> _UriConnection:
        from urllib.parse import parse_qsl, unquote, urlsplit

        parts = urlsplit(uri)
        try:
            port = parts.port
        except ValueError:
            raise SettingsError(f"the event stream's Redis URI has no valid port: {parts.netloc!r}") from None
        return cls(
            host=unquote(parts.hostname) if parts.hostname else None,
            port=port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            schema=unquote(parts.path[1:]),
            extra_dejson=dict(parse_qsl(parts.query, keep_blank_values=True)),
        )


def client_options(conn: Any) -> dict[str, Any]:
    """``redis.Redis`` keyword arguments from an Airflow connection (host, port, login, password,
    ``schema``: the URL's path, the database, unless the extra ``db`` names one)."""
    extra = conn.extra_dejson
    db = extra.get("db", conn.schema or 0)
    try:
        database = int(db)
    except (TypeError, ValueError):
        raise SettingsError(f"the event stream's Redis database must be a number, got {db!r}") from None
    return {
        "host": conn.host or "127.0.0.1",
        "port": int(conn.port or 6379),
        "db": database,
        "username": conn.login or None,
        "password": conn.password or None,
        "ssl": bool(extra.get("ssl", False)),
        "socket_timeout": 30,
        "health_check_interval": 30,
    }


def produce(
    client: Any,
    key: str,
    events: pd.DataFrame,
    *,
    per_second: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    batch: int = 1_000,
) -> tuple[str | None, str | None]:
    """Append ``events`` (:data:`etlml.records.EVENT`) to the stream, ids by the server's clock
    (``XADD *``), ``ts_utc`` the moment each batch is sent; at most ``per_second`` a second when given.
    A missing feature is left out of its entry. Returns the first and last entry ids written."""
    if per_second is not None:
        batch = max(1, min(batch, math.ceil(per_second / 10)))
    first = last = None
    started = clock()
    for begin in range(0, len(events), batch):
        part = events.iloc[begin : begin + batch]
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        with client.pipeline(transaction=False) as pipe:
            for row in part.itertuples(index=False):
                pipe.xadd(key, _entry(row, stamp))
            ids = pipe.execute()
        first = first or ids[0].decode()
        last = ids[-1].decode()
        if per_second is not None:
            ahead = (begin + len(part)) / per_second - (clock() - started)
            if ahead > 0:
                sleep(ahead)
    return first, last


def backfill(client: Any, key: str, events: pd.DataFrame, interval: Interval, *, batch: int = 10_000) -> int:
    """Append ``events`` as if they had arrived over ``interval``: explicit ids spread evenly across it,
    each event's own ``ts_utc`` kept. For demos and benchmarks of a past interval; Redis refuses it
    (``ResponseError``) once the stream holds an entry at or after the interval's start."""
    start_ms = to_ms(interval.start)
    span_ms = to_ms(interval.end) - start_ms
    per_ms = max(1, math.ceil(len(events) / span_ms))
    step = span_ms * per_ms / max(1, len(events))
    for first in range(0, len(events), batch):
        part = events.iloc[first : first + batch]
        with client.pipeline(transaction=False) as pipe:
            stamps = part["ts_utc"].map(pd.Timestamp.isoformat)
            for n, (row, stamp) in enumerate(
                zip(part.itertuples(index=False), stamps, strict=True), start=first
            ):
                slot = int(n * step)
                pipe.xadd(key, _entry(row, stamp), id=f"{start_ms + slot // per_ms}-{slot % per_ms}")
            pipe.execute()
    return len(events)


def _entry(row: Any, stamp: str) -> dict[str, str]:
    fields = {"event_id": str(row.event_id), "ts_utc": stamp}
    for name in FIELDS[2:]:
        value = float(getattr(row, name))
        if not math.isnan(value):
            fields[name] = repr(value)
    return fields


def trim(client: Any, key: str, before: datetime) -> int:
    """Remove the entries that arrived before ``before`` (``XTRIM MINID``, exact) but the newest of
    them; returns how many. That one entry is the proof that nothing from ``before`` on was removed:
    Redis keeps no trace of where a trim stopped, so an interval whose first entry were the stream's
    oldest after a trim would read as trimmed into (:meth:`StreamInfo.missing_from`), and never load."""
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind not in ("none", "stream"):
        raise StreamError(
            f"the key {key!r} holds a {kind}, not a stream: nothing was trimmed; check ETLML_STREAM_KEY "
            "and the connection's database"
        )
    newest = client.xrevrange(key, f"({to_ms(before)}-0", "-", count=1)
    if not newest:
        return 0
    return int(client.xtrim(key, minid=newest[0][0], approximate=False))
