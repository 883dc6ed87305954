"""Landing partitions for the tests: files in every format whose records' fates are known in advance."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

INJECTION_ID = "x'); DROP TABLE processed_data; --"
HUGE_FIELD = "9" * 2_000_000  # a 2 MB number: stored verbatim in quarantine, never cut


@dataclass
class Expected:
    """What a partition should give: accepted event ids and rejected records by (file, row)."""

    files: list[str] = field(default_factory=list)
    loaded: set[str] = field(default_factory=set)
    rejected: dict[tuple[str, int], str] = field(default_factory=dict)  # (file, row) -> reason
    raw: dict[tuple[str, int], bytes] = field(default_factory=dict)  # raw bytes we expect verbatim

    @property
    def extracted(self) -> int:
        return len(self.loaded) + len(self.rejected)

    @property
    def deduplicated(self) -> int:
        return sum(1 for reason in self.rejected.values() if reason == "duplicate")

    @property
    def rejected_not_duplicate(self) -> int:
        return len(self.rejected) - self.deduplicated


def event(event_id: str, ts: datetime, f1: Any = 10.0, f2: Any = 0.5, f3: Any = 100.0) -> dict[str, Any]:
    return {"event_id": event_id, "ts_utc": ts.isoformat(), "f1": f1, "f2": f2, "f3": f3}


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def jsonl(records: list[dict[str, Any] | bytes]) -> bytes:
    return b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n" for r in records)


def csv_text(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def parquet(records: list[dict[str, Any]]) -> bytes:
    frame = pd.DataFrame(records)
    frame["ts_utc"] = pd.to_datetime(frame["ts_utc"], utc=True, format="ISO8601")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


class _Partition:
    """Writes the files of one partition and records what each record should become."""

    def __init__(self, root: Path, start: datetime, key: str) -> None:
        self.folder, self.start, self.key = root / key, start, key
        self.at = [start + timedelta(seconds=i) for i in range(599)]
        self.exp = Expected()

    def good(self, prefix: str, n: int) -> list[dict[str, Any]]:
        f2 = [None if i % 9 == 0 else 0.1 for i in range(n)]  # every ninth misses f2: imputed
        return [event(f"{prefix}-{i:04d}", self.at[i], f1=10 + i % 7, f2=f2[i]) for i in range(n)]

    def reject(self, name: str, row: int, reason: str, raw: bytes | None = None) -> None:
        self.exp.rejected[(f"{self.key}/{name}", row)] = reason
        if raw is not None:
            self.exp.raw[(f"{self.key}/{name}", row)] = raw

    def a_jsonl(self) -> None:
        """Good lines, a blank line, an SQL-injection-looking id with a bad number, a raw NUL byte."""
        a = self.good("a", 60)
        bad_number = event(INJECTION_ID, self.at[5], f1="ten")
        nul_line = b'{"event_id": "n\x00ul", "ts_utc": "' + self.at[1].isoformat().encode() + b'"}'
        write(self.folder / "a.jsonl", jsonl([*a, b"\n", bad_number, nul_line + b"\n"]))
        self.exp.loaded |= {r["event_id"] for r in a[1:]}
        self.reject("a.jsonl", 1, "duplicate")  # a-0000 is delivered again in e.parquet, which wins
        self.reject("a.jsonl", 62, "invalid_number", json.dumps(bad_number).encode())
        self.reject("a.jsonl", 63, "malformed_record", nul_line)

    def b_jsonl_gz(self) -> None:
        """Good lines, a 2 MB number, a timestamp without offset, one far in the future."""
        b = self.good("b", 40)
        ts = self.at[2].isoformat().encode()
        huge = b'{"event_id": "b-huge", "ts_utc": "' + ts + b'", "f1": ' + HUGE_FIELD.encode() + b"}"
        naive = {**event("b-naive", self.at[3]), "ts_utc": self.at[3].replace(tzinfo=None).isoformat()}
        future = event("b-future", datetime(2099, 1, 1, tzinfo=self.start.tzinfo))
        write(self.folder / "b.jsonl.gz", jsonl([*b, huge + b"\n", naive, future]))
        self.exp.loaded |= {r["event_id"] for r in b}
        self.reject("b.jsonl.gz", 41, "invalid_number", huge)  # 2e6 digits: not a finite float
        self.reject("b.jsonl.gz", 42, "invalid_timestamp")
        self.reject("b.jsonl.gz", 43, "future_timestamp")

    def c_csv(self) -> None:
        """An unknown column, missing values, a multi-line quoted id, an id of 129 characters, a
        timestamp before the interval."""
        c = self.good("c", 60)
        rows = [[r["event_id"], r["ts_utc"], r["f1"], r["f2"] or "", r["f3"], "crm"] for r in c]
        ts = self.at[4].isoformat()
        rows += [["c-multi\nline", ts, 1, 2, 3, "crm"], ["c" * 129, ts, 1, 2, 3, "crm"]]
        rows.append(["c-early", (self.start - timedelta(minutes=1)).isoformat(), 1, 2, 3, "crm"])
        write(
            self.folder / "c.csv", csv_text(["event_id", "ts_utc", "f1", "f2", "f3", "source_system"], rows)
        )
        self.exp.loaded |= {r["event_id"] for r in c}
        self.reject("c.csv", 62, "invalid_event_id")  # a newline is a control character
        self.reject("c.csv", 64, "invalid_event_id")  # line 64: the multi-line row took two
        self.reject("c.csv", 65, "outside_interval")

    def d_csv_gz(self) -> None:
        """Good rows and one row with a field too many."""
        d = self.good("d", 40)
        rows = [[r["event_id"], r["ts_utc"], r["f1"], r["f2"] or "", r["f3"]] for r in d]
        rows.append(["d-wide", self.at[6].isoformat(), 1, 2, 3, "surplus"])
        write(self.folder / "d.csv.gz", csv_text(["event_id", "ts_utc", "f1", "f2", "f3"], rows))
        self.exp.loaded |= {r["event_id"] for r in d}
        self.reject("d.csv.gz", 42, "malformed_record")

    def e_parquet(self) -> None:
        """Good rows, a non-finite number, and a-0000 again (kept: the last file wins)."""
        e = self.good("e", 60)
        e += [event("e-inf", self.at[7], f3=float("inf")), event("a-0000", self.at[0], f1=11.0)]
        write(self.folder / "e.parquet", parquet(e))
        self.exp.loaded |= {r["event_id"] for r in e} - {"e-inf"}
        self.reject("e.parquet", 61, "invalid_number")


def mixed_partition(root: Path, start: datetime, key: str) -> Expected:
    """Good and bad records in every format, 10 of 271 rejected: below the default 5 % gate."""
    partition = _Partition(root, start, key)
    partition.a_jsonl()
    partition.b_jsonl_gz()
    partition.c_csv()
    partition.d_csv_gz()
    partition.e_parquet()
    # skipped: a marker file and an upload in progress
    write(partition.folder / "_SUCCESS", b"")
    write(partition.folder / ".upload.jsonl.tmp", b"partial")
    partition.exp.files = ["a.jsonl", "b.jsonl.gz", "c.csv", "d.csv.gz", "e.parquet"]
    return partition.exp


def bad_partition(root: Path, start: datetime, key: str) -> Expected:
    """:func:`mixed_partition` plus an unparseable file and a file of broken records: above 5 %."""
    exp = mixed_partition(root, start, key)
    folder = root / key
    write(folder / "f.parquet", b"PAR1 this is not parquet")
    exp.rejected[(f"{key}/f.parquet", 0)] = "unparseable_file"
    broken = [event(f"g-{i}", start + timedelta(seconds=i), f2="n/a") for i in range(30)]
    write(folder / "g.jsonl", jsonl(list(broken)))
    for i in range(30):
        exp.rejected[(f"{key}/g.jsonl", i + 1)] = "invalid_number"
    write(folder / "h.txt", b"notes")
    exp.rejected[(f"{key}/h.txt", 0)] = "unsupported_file"
    return exp
