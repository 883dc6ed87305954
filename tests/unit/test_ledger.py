"""The ledger's rule on its own: what a source lacks of what the stored run read."""

from __future__ import annotations

from etlml.ingest.ledger import FileEntry, Ledger, StreamRange, shrinkage


def files(**sizes: int) -> dict[str, FileEntry]:
    return {f"{name}.csv": FileEntry(size, sha256=f"h{size}") for name, size in sizes.items()}


def test_growth_is_no_shrinkage() -> None:
    stored = Ledger(100, files=files(a=10))
    assert not shrinkage(stored, Ledger(100, files=files(a=10)))
    assert not shrinkage(stored, Ledger(130, files=files(a=10, b=3)))


def test_fewer_records_or_a_file_gone_is_named() -> None:
    stored = Ledger(100, files=files(a=10, b=5))
    assert shrinkage(stored, Ledger(90, files=files(a=10, b=4))).missing == [
        "the source holds 90 records for the interval, the stored run read 100"
    ]
    (gone,) = shrinkage(stored, Ledger(100, files=files(a=10, c=5))).missing
    assert gone == "1 file(s) the stored run read are gone: b.csv"
    many = Ledger(10, files={f"f{n}.csv": FileEntry(1) for n in range(8)})
    assert "and 3 more" in shrinkage(many, Ledger(10, files={})).describe()


def test_a_file_that_lost_records_is_named_whatever_the_other_files_hold() -> None:
    stored = Ledger(100, files={"a.csv": FileEntry(10, records=60), "b.csv": FileEntry(5, records=40)})
    now = {
        "a.csv": FileEntry(10, records=60),
        "b.csv": FileEntry(2, records=10),
        "c.csv": FileEntry(3, records=30),
    }
    (fewer,) = shrinkage(stored, Ledger(100, files=now)).missing
    assert (
        fewer
        == "1 file(s) hold fewer records than the stored run read: b.csv (10 records, the stored run read 40)"
    )
    # a file that gained records, or ledgers of older releases that did not count them: no shrinkage
    assert not shrinkage(stored, Ledger(110, files={**now, "b.csv": FileEntry(9, records=50)}))
    assert not shrinkage(Ledger(100, files=files(a=10, b=5)), Ledger(100, files=now))
    assert FileEntry.from_json(FileEntry(3, sha256="h", records=7).to_json()) == FileEntry(3, "h", records=7)


def test_a_stream_range_that_lost_either_end_or_moved_key() -> None:
    stored = Ledger(3, stream=StreamRange("k", "100-0", "300-2", 3))
    assert not shrinkage(stored, Ledger(4, stream=StreamRange("k", "99-0", "300-2", 4)))
    lost_head = shrinkage(stored, Ledger(3, stream=StreamRange("k", "150-0", "400-0", 3))).describe()
    assert "read from entry 100-0" in lost_head and "400-0" not in lost_head
    lost_tail = shrinkage(stored, Ledger(3, stream=StreamRange("k", "100-0", "300-1", 3))).describe()
    assert "up to entry 300-2" in lost_tail and "ends the interval at 300-1" in lost_tail
    assert (
        "stream 'k'" in shrinkage(stored, Ledger(3, stream=StreamRange("k2", "100-0", "300-2", 3))).describe()
    )
    assert (
        "no entry at all" in shrinkage(stored, Ledger(0, stream=StreamRange("k", None, None, 0))).describe()
    )


def test_rows_stored_before_the_ledger_are_judged_by_what_they_recorded() -> None:
    old = Ledger.of_audit(None, 50, {"a.csv": 10, "b.csv": -1}, None)
    assert old.records == 50 and old.files == {"a.csv": FileEntry(10), "b.csv": FileEntry(-1)}
    assert shrinkage(old, Ledger(50, files={"a.csv": FileEntry(10, sha256="x")})).missing
    stream = Ledger.of_audit(None, 7, None, "5-0")
    assert not shrinkage(stream, Ledger(7, stream=StreamRange("k", "5-0", "9-0", 7)))
    assert shrinkage(stream, Ledger(7, stream=StreamRange("k", "6-0", "9-0", 7)))


def test_the_ledger_round_trips_through_json() -> None:
    ledger = Ledger(5, files={"a.csv": FileEntry(3, etag="e", mtime_ns=None)}, stream=None)
    assert Ledger.from_json(ledger.to_json()) == ledger
    assert ledger.to_json() == {"records": 5, "files": {"a.csv": {"size": 3, "etag": "e"}}}
    assert FileEntry(3, sha256="a").same_content(FileEntry(3, sha256="b")) is False
    assert FileEntry(3).same_content(FileEntry(3, sha256="b")) is None
