"""The ledger: what one run of an interval read from its source, and the one rule every source obeys.

A run records, beside its accounting in ``run_audit``, what identifies the content it read: the
record count; for files (landing folders, local or on object storage) each file's name, size and
checksum (sha256 of a local file, the object store's ETag); for a log (the Redis stream) the key,
the first and last entry id and the entries in the interval. The rule, checked in one place
(``load_processed``, under the interval's lock, before anything is written):

    a rerun never stores less than its source held when the interval was stored,
    unless an operator asks for it (the DAG-run param ``accept_smaller_source``).

So a rerun whose source now holds fewer records, or lacks files or entries the stored run read, is
refused; growth (late files, late entries) is a plain merge. A missing partition folder is not a
smaller source: such a run reads nothing and writes nothing (absence removes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SHOWN = 5
"""Names (files, entry ids) a message lists before it says how many more there are."""


def _entry_key(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class StreamRange:
    """What a run read of a log: its key, the interval's first and last entry id (``None`` when the
    interval had no entry) and how many entries."""

    key: str
    first_entry_id: str | None
    last_entry_id: str | None
    entries: int

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "first_entry_id": self.first_entry_id,
            "last_entry_id": self.last_entry_id,
            "entries": self.entries,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StreamRange:
        return cls(
            str(data["key"]),
            data.get("first_entry_id"),
            data.get("last_entry_id"),
            int(data.get("entries", 0)),
        )


@dataclass(frozen=True)
class FileEntry:
    """One file a run read: its size as stored (-1 for a symbolic link, never read), what tells
    its content apart: ``sha256`` (local files), ``etag`` (object storage), ``mtime_ns``, and the
    records the run read from it (``None``: not counted, as in ledgers of older releases)."""

    size: int
    sha256: str | None = None
    etag: str | None = None
    mtime_ns: int | None = None
    records: int | None = None

    def to_json(self) -> dict[str, Any]:
        fields = {
            "sha256": self.sha256,
            "etag": self.etag,
            "mtime_ns": self.mtime_ns,
            "records": self.records,
        }
        return {"size": self.size, **{k: v for k, v in fields.items() if v is not None}}

    @classmethod
    def from_json(cls, data: Any) -> FileEntry:
        if isinstance(data, int):  # run_audit.files before the ledger: the size alone
            return cls(int(data))
        mtime, records = data.get("mtime_ns"), data.get("records")
        return cls(
            int(data["size"]),
            data.get("sha256"),
            data.get("etag"),
            None if mtime is None else int(mtime),
            None if records is None else int(records),
        )

    def same_content(self, other: FileEntry) -> bool | None:
        """Whether both name the same content (``None``: they carry nothing to compare but the size)."""
        if self.size != other.size:
            return False
        for mine, theirs in ((self.sha256, other.sha256), (self.etag, other.etag)):
            if mine is not None and theirs is not None:
                return bool(mine == theirs)
        return None


@dataclass(frozen=True)
class Ledger:
    """What one run of an interval read: ``records`` (every record, accepted, rejected or a
    duplicate), and the files or the stream range they came from."""

    records: int
    files: dict[str, FileEntry] | None = None
    stream: StreamRange | None = None

    @property
    def sizes(self) -> dict[str, int] | None:
        """File -> size as stored, as ``run_audit.files`` records them (``None``: no files)."""
        return None if self.files is None else {name: entry.size for name, entry in self.files.items()}

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"records": self.records}
        if self.files is not None:
            document["files"] = {name: entry.to_json() for name, entry in sorted(self.files.items())}
        if self.stream is not None:
            document["stream"] = self.stream.to_json()
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ledger:
        files = data.get("files")
        stream = data.get("stream")
        return cls(
            int(data.get("records", 0)),
            None if files is None else {str(k): FileEntry.from_json(v) for k, v in files.items()},
            None if stream is None else StreamRange.from_json(stream),
        )

    @classmethod
    def of_audit(
        cls,
        ledger: Mapping[str, Any] | None,
        extracted: int,
        files: Mapping[str, Any] | None,
        first: str | None,
    ) -> Ledger:
        """The ledger of a ``run_audit`` row; for a row stored before the ledger existed, what its
        other columns say (the records, the files' sizes, a stream's first entry)."""
        if ledger is not None:
            return cls.from_json(ledger)
        # every record of a stream interval is one entry: the records are its entries
        stream = None if first is None else StreamRange("", first, None, extracted)
        entries = None if files is None else {str(k): FileEntry.from_json(v) for k, v in files.items()}
        return cls(extracted, entries, stream)


@dataclass(frozen=True)
class Shrinkage:
    """What a source no longer holds of what the stored run read; empty when it holds at least that."""

    missing: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing)

    def to_json(self) -> list[str]:
        return list(self.missing)

    def describe(self) -> str:
        return "; ".join(self.missing)


def with_records(files: dict[str, FileEntry], records: Mapping[str, int]) -> dict[str, FileEntry]:
    """``files`` with the records read from each (``records``: file -> how many; a listed file
    missing there held none)."""
    return {name: replace(entry, records=int(records.get(name, 0))) for name, entry in files.items()}


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown if len(names) <= SHOWN else f"{shown} and {len(names) - SHOWN} more"


def shrinkage(stored: Ledger, now: Ledger) -> Shrinkage:
    """What ``now`` (what a rerun read) lacks of ``stored`` (what the interval's stored run read):
    fewer records, files gone, a stream's entries gone from either end of the range or another key."""
    missing: list[str] = []
    if now.records < stored.records:
        missing.append(
            f"the source holds {now.records} records for the interval, the stored run read {stored.records}"
        )
    if stored.files is not None:
        gone = sorted(set(stored.files) - set(now.files or {}))
        if gone:
            missing.append(f"{len(gone)} file(s) the stored run read are gone: {_names(gone)}")
        # a file that lost records is a smaller source even when other files make up the count
        fewer = [
            f"{name} ({entry.records} records, the stored run read {before.records})"
            for name, before in sorted(stored.files.items())
            if (entry := (now.files or {}).get(name)) is not None
            and before.records is not None
            and entry.records is not None
            and entry.records < before.records
        ]
        if fewer:
            missing.append(
                f"{len(fewer)} file(s) hold fewer records than the stored run read: {_names(fewer)}"
            )
    if stored.stream is not None:
        missing += _stream_missing(stored.stream, now.stream)
    return Shrinkage(missing)


def _gone_before(now: str | None, stored: str) -> bool:
    """Whether the stream's range now begins after ``stored``, its stored first entry."""
    return now is None or _entry_key(now) > _entry_key(stored)


def _gone_after(now: str | None, stored: str) -> bool:
    """Whether the stream's range now ends before ``stored``, its stored last entry."""
    return now is None or _entry_key(now) < _entry_key(stored)


def _stream_missing(stored: StreamRange, now: StreamRange | None) -> list[str]:
    if now is None:
        return ["the stored run read a stream; this run read none"]
    missing = []
    if stored.key and now.key != stored.key:
        missing.append(f"the stored run read stream {stored.key!r}, this run reads {now.key!r}")
    if stored.first_entry_id is not None and _gone_before(now.first_entry_id, stored.first_entry_id):
        missing.append(
            f"the stored run read from entry {stored.first_entry_id}, the stream now begins the interval "
            f"at {now.first_entry_id or 'no entry at all'}"
        )
    if stored.last_entry_id is not None and _gone_after(now.last_entry_id, stored.last_entry_id):
        missing.append(
            f"the stored run read up to entry {stored.last_entry_id}, the stream now ends the interval "
            f"at {now.last_entry_id or 'no entry at all'}"
        )
    if now.entries < stored.entries:
        missing.append(f"{now.entries} entries in the interval, the stored run read {stored.entries}")
    return missing
