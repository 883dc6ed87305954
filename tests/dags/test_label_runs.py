"""dag.test() runs of 15_ingest_labels after 10_etl_ml_pipeline: the simulator's labels are those of
exactly the stored events, three intervals later; a landing label file's bad row, unknown id and
repeated label are quarantined; a rerun changes nothing."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from etlml import cli, settings
from etlml.ingest.simulator import SimulatedLabels, SimulatedSource, ground_truth
from etlml.interval import Interval
from etlml.steps.assets import LABELS_URI
from tests.dags.test_dag_runs import PIPELINE_PARAMS
from tests.dags.test_monitor_runs import asset_events

pytestmark = [pytest.mark.airflow, pytest.mark.db]

LABELS = "15_ingest_labels"
PIPELINE = "10_etl_ml_pipeline"
TEN = timedelta(minutes=10)
# intervals of their own (dag.test() on a logical date another test used would reuse that run)
FIRST = Interval(datetime(2026, 11, 23, 14, 0, tzinfo=UTC), datetime(2026, 11, 23, 14, 10, tzinfo=UTC))
DIGESTS = (
    "SELECT md5(string_agg(t::text, '|' ORDER BY event_id)) FROM labels t",
    "SELECT md5(string_agg(t::text, '|' ORDER BY source_file, row_number)) FROM rejected_labels t",
)


def nth(k: int) -> Interval:
    return Interval(FIRST.start + TEN * k, FIRST.end + TEN * k)


def bounds(interval: Interval) -> dict[str, str]:
    return {"interval_start": interval.start.isoformat(), "interval_end": interval.end.isoformat()}


@pytest.fixture
def wh(conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch) -> psycopg.Connection[Any]:
    for name in (
        "ETLML_SOURCE",
        "ETLML_LABEL_SOURCE",
        "ETLML_SIMULATOR_SHIFT",
        "ETLML_SIMULATOR_LABEL_DELAY",
    ):
        monkeypatch.delenv(name, raising=False)
    conn.execute("TRUNCATE labels, rejected_labels")
    conn.commit()
    return conn


def run(dag: Any, interval: Interval, conf: dict[str, Any]) -> None:
    # every param explicit: a run_conf given to dag.test() by an earlier run outlives its run
    if dag.dag_id == LABELS:
        conf = {"accept_smaller_source": False, **conf}
    dag_run = dag.test(logical_date=interval.end, run_conf=conf)
    assert dag_run.state == "success", f"{dag.dag_id} run of {interval.key} ended {dag_run.state}"


def events(conn: psycopg.Connection[Any], interval: Interval) -> pd.DataFrame:
    rows = conn.execute(
        "SELECT event_id, ts_utc, f1, f2, f3 FROM processed_data WHERE interval_start = %s", (interval.start,)
    ).fetchall()
    return pd.DataFrame(rows, columns=["event_id", "ts_utc", "f1", "f2", "f3"]).set_index("event_id")


def stored_labels(conn: psycopg.Connection[Any]) -> pd.DataFrame:
    rows = conn.execute(
        "SELECT event_id, y_true, observed_at, interval_start, interval_end, source_file, deliveries "
        "FROM labels"
    ).fetchall()
    columns = [
        "event_id",
        "y_true",
        "observed_at",
        "interval_start",
        "interval_end",
        "source_file",
        "deliveries",
    ]
    return pd.DataFrame(rows, columns=columns).set_index("event_id")


def digests(conn: psycopg.Connection[Any]) -> list[str]:
    return [str(conn.execute(q).fetchone()[0]) for q in DIGESTS]  # type: ignore[index]


def test_simulator_labels_match_the_stored_events_and_landing_labels_are_checked(
    dags: dict[str, Any],
    wh: psycopg.Connection[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for k in range(3):
        run(dags[PIPELINE], nth(k), dict(PIPELINE_PARAMS))

    # the run of FIRST + 3 intervals gives the labels of FIRST's events; its labels event names FIRST
    since = datetime.now(UTC)
    run(dags[LABELS], nth(3), {"simulated_events": 200})
    (event,) = asset_events(LABELS_URI, since)
    assert (event["delivered_in"], event["intervals"]) == (bounds(nth(3)), [bounds(FIRST)])
    stored = events(wh, FIRST)
    got = stored_labels(wh)
    assert len(stored) == 200
    assert sorted(got.index) == sorted(stored.index)
    assert (got["interval_start"] == FIRST.start).all() and (got["interval_end"] == FIRST.end).all()
    assert (got["observed_at"] == stored.loc[got.index, "ts_utc"] + 3 * TEN).all()
    assert set(got["source_file"]) == {"simulator"} and set(got["deliveries"]) == {1}
    expected = SimulatedLabels(SimulatedSource(settings.load().source_seed, 200), 3).labels(nth(3))
    assert dict(zip(expected["event_id"], expected["y_true"], strict=True)) == got["y_true"].to_dict()
    # and they are the truth of these very events: the ground truth of the stored features, plus noise
    known = stored[stored["f2"].notna()]
    truth = ground_truth(*(known[f].to_numpy(dtype=float) for f in ("f1", "f2", "f3")), np.zeros(len(known)))
    assert np.max(np.abs(got.loc[known.index, "y_true"].to_numpy() - truth)) < 0.6
    audit = wh.execute(
        "SELECT source, extracted, loaded, rejected, deduplicated, gate FROM run_audit "
        "WHERE dag_id = %s AND interval_start = %s",
        (LABELS, nth(3).start),
    ).fetchone()
    assert audit == ("simulator", 200, 200, 0, 0, "passed")

    # a rerun of the label interval leaves the tables as they were
    before = digests(wh)
    run(dags[LABELS], nth(3), {"simulated_events": 200})
    assert digests(wh) == before

    # landing labels for FIRST + 1's events, delivered in interval FIRST + 4: a bad row, an unknown id,
    # a repeated label (the later row wins)
    monkeypatch.setenv("ETLML_LABEL_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", tmp_path.as_uri())
    second = sorted(events(wh, nth(1)).index)
    observed = (nth(4).start + timedelta(minutes=1)).isoformat()
    folder = tmp_path / "labels" / f"{nth(4).start:%Y-%m-%d}" / f"{nth(4).start:%H%M}"
    folder.mkdir(parents=True)
    rows = [f"{e},{i / 10},{observed}" for i, e in enumerate(second[:150])]
    rows += [
        f"{second[0]},not-a-number,{observed}",
        f"evt-nowhere,1.0,{observed}",
        f"{second[1]},42.0,{observed}",
    ]
    (folder / "a.csv").write_text("event_id,y_true,observed_at\n" + "\n".join(rows) + "\n")
    tail = [{"event_id": e, "y_true": -1.0, "observed_at": observed} for e in second[150:]]
    (folder / "b.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in tail).encode()))
    since = datetime.now(UTC)
    run(dags[LABELS], nth(4), {"simulated_events": 200})
    (event,) = asset_events(LABELS_URI, since)
    assert event["intervals"] == [bounds(nth(1))]  # the events' interval, not the delivery's

    got = stored_labels(wh)
    landed = got[got["interval_start"] == nth(1).start]
    assert sorted(landed.index) == second
    assert landed.loc[second[0], "y_true"] == 0.0
    assert landed.loc[second[1], "y_true"] == 42.0  # the repeated label: its later row wins
    assert (landed.loc[second[150:], "y_true"] == -1.0).all()
    assert set(landed["source_file"]) == {"labels/2026-11-23/1440/a.csv", "labels/2026-11-23/1440/b.jsonl.gz"}
    quarantined = wh.execute(
        "SELECT row_number, reason, event_id FROM rejected_labels WHERE interval_start = %s "
        "ORDER BY row_number",
        (nth(4).start,),
    ).fetchall()
    assert quarantined == [
        (3, "duplicate", second[1]),  # row 3 of a.csv: second[1]'s first label, superseded by row 154
        (152, "invalid_number", second[0]),
        (153, "unknown_event", "evt-nowhere"),
    ]
    audit = wh.execute(
        "SELECT source, extracted, loaded, rejected, deduplicated, by_reason, gate FROM run_audit "
        "WHERE dag_id = %s AND interval_start = %s",
        (LABELS, nth(4).start),
    ).fetchone()
    assert audit == ("landing", 203, 200, 2, 1, {"invalid_number": 1, "unknown_event": 1}, "passed")
    # the simulator's labels of FIRST are untouched
    assert (got[got["interval_start"] == FIRST.start]["source_file"] == "simulator").all()

    _a_late_label_file_then_a_withdrawn_one(dags, wh, capsys, folder, (second[2], observed))


def _a_late_label_file_then_a_withdrawn_one(
    dags: dict[str, Any],
    wh: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    folder: Path,
    label: tuple[str, str],
) -> None:
    """After the landing label run of ``nth(4)``: ``runs changed`` lists a late file (of ``label``,
    an event id and when it was observed), and the ledger refuses a rerun over a folder that lost one."""
    event_id, observed = label
    # a label file that lands after its interval ran is listed by `etlml runs changed`, as the label
    # DAG's, with the folder's other files as they were
    (folder / "c.csv").write_text(f"event_id,y_true,observed_at\n{event_id},7.0,{observed}\n")
    window = ["--from", nth(4).start.isoformat(), "--to", nth(4).end.isoformat(), "--json"]
    capsys.readouterr()
    assert cli.main(["runs", "changed", *window]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["dag_id"], c["source"], c["added"], c["removed"], c["resized"]) for c in listed] == [
        (LABELS, "landing", ["labels/2026-11-23/1440/c.csv"], [], [])
    ]

    # label files obey the ledger too: a rerun over a folder that lost a file is refused, and changes
    # nothing, until an operator accepts it
    (folder / "b.jsonl.gz").unlink()
    before = digests(wh)
    conf = {"simulated_events": 200, "accept_smaller_source": False}
    assert dags[LABELS].test(logical_date=nth(4).end, run_conf=conf).state == "failed"
    assert digests(wh) == before
    conf["accept_smaller_source"] = True
    assert dags[LABELS].test(logical_date=nth(4).end, run_conf=conf).state == "success"
    accepted = wh.execute(
        "SELECT smaller_source_accepted FROM run_audit WHERE dag_id = %s AND interval_start = %s",
        (LABELS, nth(4).start),
    ).fetchone()[0]
    assert accepted["by"] == "dag_test" and "b.jsonl.gz" in " ".join(accepted["missing"])


def test_a_shift_reaches_the_stored_events_and_their_labels_alike(
    dags: dict[str, Any], wh: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shifted = Interval(datetime(2026, 11, 23, 16, 0, tzinfo=UTC), datetime(2026, 11, 23, 16, 10, tzinfo=UTC))
    monkeypatch.setenv("ETLML_SIMULATOR_SHIFT", "f3=+20")
    run(dags[PIPELINE], shifted, dict(PIPELINE_PARAMS))
    run(dags[LABELS], shifted.shifted(3 * TEN), {"simulated_events": 200})
    stored = events(wh, shifted)
    assert stored["f3"].mean() == pytest.approx(120, abs=2.5)  # N(120, 10) over 200 events
    got = stored_labels(wh).loc[stored.index]
    known = stored[stored["f2"].notna()]
    truth = ground_truth(*(known[f].to_numpy(dtype=float) for f in ("f1", "f2", "f3")), np.zeros(len(known)))
    assert np.max(np.abs(got.loc[known.index, "y_true"].to_numpy() - truth)) < 0.6
