"""Storing labels on the real PostgreSQL: upserted when their event is stored (the latest delivery
wins), quarantined as unknown_event when not, accounted for in run_audit, and a rerun changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml.interval import Interval
from etlml.steps.ingest_labels import events_loaded, ingest_labels
from etlml.steps.run import RunContext

pytestmark = pytest.mark.db

TEN = timedelta(minutes=10)
J = Interval(datetime(2026, 11, 20, 12, 30, tzinfo=UTC), datetime(2026, 11, 20, 12, 40, tzinfo=UTC))
EVENTS = Interval(J.start - 3 * TEN, J.end - 3 * TEN)  # the events' interval, 30 minutes before
NOW = J.end + timedelta(minutes=1)
OBSERVED = "2026-11-20T12:35:00+00:00"
LABELS_DIGEST = "SELECT md5(string_agg(t::text, '|' ORDER BY event_id)) FROM labels t"
REJECTED_DIGEST = (
    "SELECT md5(string_agg(t::text, '|' ORDER BY source_file, row_number)) FROM rejected_labels t"
)


@pytest.fixture
def wh(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("TRUNCATE labels, rejected_labels")
    conn.commit()
    return conn


@pytest.fixture
def landing_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", tmp_path.as_uri())
    monkeypatch.setenv("ETLML_MAX_REJECTED_SHARE", "1")
    monkeypatch.delenv("ETLML_LABEL_SOURCE", raising=False)
    monkeypatch.delenv("ETLML_LABEL_WINDOW_DAYS", raising=False)
    yield tmp_path


def store_events(conn: psycopg.Connection[Any], interval: Interval, *ids: str) -> None:
    """Events as load_processed stores them (the values do not matter to labels)."""
    conn.execute("SELECT etlml_ensure_partitions(%s, %s)", (interval.start, interval.start))
    for n, event_id in enumerate(ids):
        conn.execute(
            "INSERT INTO processed_data (event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, "
            "f2_imputed, f3_imputed, normalized_with, interval_start, interval_end) "
            "VALUES (%s, %s, 1, 2, 3, 0, 0, 0, false, false, false, 'baseline_v1', %s, %s)",
            (event_id, interval.start + timedelta(seconds=n), interval.start, interval.end),
        )
    conn.commit()


def deliver(root: Path, interval: Interval, name: str, *rows: str) -> None:
    folder = root / "labels" / f"{interval.start:%Y-%m-%d}" / f"{interval.start:%H%M}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("event_id,y_true,observed_at\n" + "".join(r + "\n" for r in rows))


def run(interval: Interval = J, run_id: str = "manual__1", *, accept_smaller: bool = False) -> dict[str, Any]:
    context = RunContext("15_ingest_labels", run_id, interval, accept_smaller_source=accept_smaller)
    return ingest_labels(context, simulated_events=200, now=NOW).to_xcom()


def labels(conn: psycopg.Connection[Any]) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT event_id, y_true, source_file, deliveries, interval_start, written_by_run FROM labels"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def rejected(conn: psycopg.Connection[Any], interval: Interval = J) -> dict[tuple[str, int], tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT source_file, row_number, reason, event_id, message, raw FROM rejected_labels "
        "WHERE interval_start = %s AND interval_end = %s",
        (interval.start, interval.end),
    ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def digest(conn: psycopg.Connection[Any], query: str) -> str:
    row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def test_labels_of_stored_events_are_upserted_and_the_others_quarantined(
    wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    store_events(wh, EVENTS, "e1", "e2", "e3")
    deliver(
        landing_root,
        J,
        "a.csv",
        f"e1,1.0,{OBSERVED}",  # superseded by row 6
        f"e2,2.0,{OBSERVED}",
        f"ghost,9.0,{OBSERVED}",  # no such event
        f"e3,not-a-number,{OBSERVED}",
        f"e1,1.5,{OBSERVED}",
    )
    result = run()
    key = "labels/2026-11-20/1230/a.csv"
    assert labels(wh) == {
        "e1": (1.5, key, 1, EVENTS.start, "15_ingest_labels/manual__1"),
        "e2": (2.0, key, 1, EVENTS.start, "15_ingest_labels/manual__1"),
    }
    got = rejected(wh)
    assert {k: v[:2] for k, v in got.items()} == {
        (key, 2): ("duplicate", "e1"),
        (key, 4): ("unknown_event", "ghost"),
        (key, 5): ("invalid_number", "e3"),
    }
    assert "ETLML_LABEL_WINDOW_DAYS=7" in got[(key, 4)][2]
    assert bytes(got[(key, 4)][3]) == f"ghost,9.0,{OBSERVED}".encode()
    audit = wh.execute(
        "SELECT source, extracted, loaded, rejected, deduplicated, by_reason, files, gate, load_id "
        "FROM run_audit WHERE dag_id = '15_ingest_labels' AND interval_start = %s",
        (J.start,),
    ).fetchone()
    assert audit is not None
    size = (landing_root / key).stat().st_size
    assert audit == (
        "landing",
        5,
        2,
        2,
        1,
        {"unknown_event": 1, "invalid_number": 1},
        {key: size},
        "passed",
        None,
    )
    assert (result["loaded"], result["rejected"], result["deduplicated"], result["inserted"]) == (2, 2, 1, 2)


def test_a_rerun_leaves_the_tables_as_they_were(wh: psycopg.Connection[Any], landing_root: Path) -> None:
    store_events(wh, EVENTS, "e1", "e2")
    deliver(
        landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}", f"e2,2.0,{OBSERVED}", "e2,bad,", f"x,1,{OBSERVED}"
    )
    run(run_id="manual__1")
    before = digest(wh, LABELS_DIGEST), digest(wh, REJECTED_DIGEST)
    again = run(run_id="manual__2")
    assert (digest(wh, LABELS_DIGEST), digest(wh, REJECTED_DIGEST)) == before
    assert (again["inserted"], again["updated"]) == (0, 0)
    assert {v[2] for v in labels(wh).values()} == {1}  # the same delivery read twice is one delivery


def test_the_latest_delivery_wins_across_intervals(wh: psycopg.Connection[Any], landing_root: Path) -> None:
    later = Interval(J.start + TEN, J.end + TEN)
    store_events(wh, EVENTS, "e1")
    deliver(landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}")
    deliver(landing_root, later, "a.csv", f"e1,2.0,{OBSERVED}")
    run(J)
    first_update = wh.execute("SELECT updated_at FROM labels").fetchone()
    run(later, "manual__later")
    second = labels(wh)["e1"]
    assert second[:3] == (2.0, "labels/2026-11-20/1240/a.csv", 2)
    assert second[4] == "15_ingest_labels/manual__later"
    assert wh.execute("SELECT updated_at FROM labels").fetchone() != first_update
    # rerunning the earlier interval does not bring its older delivery back
    stored = digest(wh, LABELS_DIGEST)
    assert run(J, "manual__rerun")["loaded"] == 1
    assert digest(wh, LABELS_DIGEST) == stored
    # a corrected file of the latest delivery, read again, overwrites without counting a delivery
    deliver(landing_root, later, "a.csv", f"e1,2.5,{OBSERVED}")
    run(later, "manual__fixed")
    assert labels(wh)["e1"][:3] == (2.5, "labels/2026-11-20/1240/a.csv", 2)


def test_events_are_looked_up_within_the_label_window(
    wh: psycopg.Connection[Any], landing_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Interval(J.start - timedelta(days=8), J.end - timedelta(days=8))
    store_events(wh, old, "old")
    deliver(landing_root, J, "a.csv", f"old,1.0,{OBSERVED}")
    run()
    assert labels(wh) == {}
    [(reason, _, message, _)] = rejected(wh).values()
    assert reason == "unknown_event"
    assert "[2026-11-13T12:30:00+00:00, 2026-11-20T12:40:00+00:00)" in message
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "9")
    run(run_id="manual__wider")
    assert labels(wh)["old"][3] == old.start
    assert rejected(wh) == {}  # the rerun removed the quarantined record it no longer rejects


def test_the_gate_fails_the_run_and_keeps_what_was_stored(
    wh: psycopg.Connection[Any], landing_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("ETLML_MAX_REJECTED_SHARE", "0.05")
    store_events(wh, EVENTS, "e1")
    deliver(landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}", "e2,,")
    with pytest.raises(AirflowFailException, match="label quality gate failed: 1 of 2 label records"):
        run()
    assert set(labels(wh)) == {"e1"}
    assert [v[0] for v in rejected(wh).values()] == ["invalid_number"]
    gate = wh.execute("SELECT gate FROM run_audit WHERE dag_id = '15_ingest_labels'").fetchone()
    assert gate == ("failed",)


def test_a_missing_partition_stores_nothing_and_keeps_what_is_held(
    wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    store_events(wh, EVENTS, "e1")
    deliver(landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}", "e1,x,")
    run()
    held = digest(wh, LABELS_DIGEST), digest(wh, REJECTED_DIGEST)
    for f in (landing_root / "labels" / "2026-11-20" / "1230").iterdir():
        f.unlink()
    (landing_root / "labels" / "2026-11-20" / "1230").rmdir()
    result = run(run_id="manual__gone")
    assert result["found"] is False
    assert (digest(wh, LABELS_DIGEST), digest(wh, REJECTED_DIGEST)) == held


def test_simulator_labels_wait_for_their_events_to_be_loaded(
    wh: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETLML_SOURCE", "simulator")
    monkeypatch.delenv("ETLML_LABEL_SOURCE", raising=False)
    context = RunContext("15_ingest_labels", "manual__1", J)
    assert events_loaded(context, simulated_events=5) is False
    wh.execute(
        "INSERT INTO run_audit (dag_id, interval_start, interval_end, source, extracted, loaded, rejected, "
        "deduplicated, rejected_share, max_rejected_share, gate, by_reason, extra_fields, extra_field_names, "
        "imputed, written_by_run) VALUES ('10_etl_ml_pipeline', %s, %s, 'simulator', 0, 0, 0, 0, 0, 0.05, "
        "'passed', '{}', '{}', 0, '{}', 't')",
        (EVENTS.start, EVENTS.end),
    )
    wh.commit()
    assert events_loaded(context, simulated_events=5) is True
    monkeypatch.setenv("ETLML_SOURCE", "landing")  # landing labels name events of any interval: no wait
    assert events_loaded(RunContext("15_ingest_labels", "m", later_interval(J, 50)), simulated_events=5)
    # labels of an interval before ETLML_START_DATE: the simulator made no events there, none to wait for
    monkeypatch.setenv("ETLML_SOURCE", "simulator")
    monkeypatch.setenv("ETLML_START_DATE", "2026-11-20T12:30:00Z")
    assert events_loaded(context, simulated_events=5) is True
    assert run()["extracted"] == 0


def later_interval(interval: Interval, k: int) -> Interval:
    return Interval(interval.start + TEN * k, interval.end + TEN * k)


def test_the_pipeline_role_may_do_all_of_it(
    pipeline_role: tuple[str, str], fresh_migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", tmp_path.as_uri())
    monkeypatch.setenv("ETLML_MAX_REJECTED_SHARE", "1")
    with psycopg.connect(fresh_migrated) as owner:
        store_events(owner, EVENTS, "e1", "e2")
    deliver(tmp_path, J, "a.csv", f"e1,1.0,{OBSERVED}", f"e2,2.0,{OBSERVED}", f"zz,1,{OBSERVED}")
    run()
    run(run_id="manual__2")
    with psycopg.connect(fresh_migrated) as owner:
        assert owner.execute("SELECT count(*) FROM labels").fetchone() == (2,)
        assert owner.execute("SELECT reason FROM rejected_labels").fetchall() == [("unknown_event",)]


def test_a_corrected_label_file_takes_back_what_it_no_longer_holds(
    wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    """Events follow their latest run; so do labels: a rerun of a label interval whose corrected file
    no longer holds a label removes it, unless a later delivery holds it."""
    later = Interval(J.start + TEN, J.end + TEN)
    store_events(wh, EVENTS, "e1", "e2", "e3", "e4")
    deliver(landing_root, J, "a.csv", *(f"{e},1.0,{OBSERVED}" for e in ("e1", "e2", "e3", "e4")))
    run()
    deliver(landing_root, later, "a.csv", f"e4,4.0,{OBSERVED}")
    run(later, "manual__later")
    assert sorted(labels(wh)) == ["e1", "e2", "e3", "e4"]
    # e3 was delivered by mistake: the file is corrected and the interval rerun, by an operator who
    # means to take a label back (a plain rerun over a smaller file is refused: the ledger's rule)
    deliver(landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}", f"e2,1.0,{OBSERVED}")
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="accept_smaller_source"):
        run(run_id="manual__2")
    assert sorted(labels(wh)) == ["e1", "e2", "e3", "e4"]
    result = run(run_id="manual__2", accept_smaller=True)
    assert result["loaded"] == 2
    held = labels(wh)
    assert sorted(held) == ["e1", "e2", "e4"]  # e4: the later delivery still holds it
    assert held["e4"][0] == 4.0
    # a rerun of the same correction changes nothing
    before = digest(wh, LABELS_DIGEST)
    run(run_id="manual__3")
    assert digest(wh, LABELS_DIGEST) == before


def test_a_corrected_file_may_move_a_label_to_an_earlier_file_of_its_partition(
    wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    store_events(wh, EVENTS, "e1")
    deliver(landing_root, J, "b.csv", f"e1,2.0,{OBSERVED}")
    run()
    (landing_root / "labels" / f"{J.start:%Y-%m-%d}" / f"{J.start:%H%M}" / "b.csv").unlink()
    deliver(landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}")
    run(run_id="manual__2", accept_smaller=True)  # b.csv withdrawn on purpose
    assert labels(wh)["e1"][:2] == (1.0, "labels/2026-11-20/1230/a.csv")


def test_a_label_run_names_the_intervals_whose_labels_it_stored_or_withdrew(
    wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    """What the run's ``labels`` asset event names for 30_monitor: the intervals of the events it
    labelled and of the labels it took back, not those of labels a later delivery supersedes."""
    later, other = Interval(J.start + TEN, J.end + TEN), Interval(EVENTS.start - TEN, EVENTS.start)
    store_events(wh, EVENTS, "e1", "e2")
    store_events(wh, other, "o1")
    deliver(landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}", f"o1,1.0,{OBSERVED}")
    assert run()["intervals"] == [other.key, EVENTS.key]
    deliver(landing_root, later, "a.csv", f"e2,2.0,{OBSERVED}")
    assert run(later, "manual__later")["intervals"] == [EVENTS.key]
    # o1's label taken back: its interval is named although nothing of it is stored now
    deliver(landing_root, J, "a.csv", f"e1,1.0,{OBSERVED}")
    assert run(run_id="manual__2", accept_smaller=True)["intervals"] == [other.key, EVENTS.key]
    # the later partition delivers e1 too: a rerun of J stores nothing, and names nothing
    deliver(landing_root, later, "a.csv", f"e2,2.0,{OBSERVED}", f"e1,3.0,{OBSERVED}")
    assert run(later, "manual__later2")["intervals"] == [EVENTS.key]
    assert run(run_id="manual__3")["intervals"] == []
