"""The etlml page as Airflow's API server serves it: the plugin mounted by Airflow's own app factory,
Airflow's authentication in front, and a real warehouse filled with known rows behind."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from tests import page_rows as rows
from tests.conftest import WORK_DIR
from tests.page_rows import STEP, find, section

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def airflow_api(airflow_db: None) -> Iterator[tuple[Any, dict[str, str]]]:
    """Airflow's API server app (``create_app``, as ``airflow api-server`` builds it) with the
    SimpleAuthManager, and a JWT for each of its users: an admin and a viewer."""
    from fastapi.testclient import TestClient

    passwords = WORK_DIR / "ui_passwords.json"
    passwords.write_text(json.dumps({"admin": "admin", "viewer": "viewer"}))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        app = create_app()
        tokens = {
            role: get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=role, role=role))
            for role in ("admin", "viewer")
        }
        with TestClient(app) as client:
            yield client, tokens


@pytest.fixture
def client(airflow_api: tuple[Any, dict[str, str]]) -> Any:
    client, _ = airflow_api
    client.cookies.clear()
    return client


@pytest.fixture
def viewer(airflow_api: tuple[Any, dict[str, str]]) -> dict[str, str]:
    """The cookie the UI's login sets, of a user with the least role (viewer)."""
    return {"_token": airflow_api[1]["viewer"]}


def get_page(client: Any, cookies: dict[str, str]) -> str:
    client.cookies.update(cookies)
    response = client.get("/etlml/")
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return str(response.text)


@pytest.fixture
def filled(fresh_migrated: str) -> dict[str, Any]:
    """Three pipeline intervals (the middle one's gate failed), drift, realized accuracy, a promoted
    challenger with a reference profile and the comparison it was promoted on; plus rows the page
    must leave out (a day-old interval, another DAG's audit)."""
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        latest = rows.latest_closed(conn)
        starts = [latest - 2 * STEP, latest - STEP, latest]
        rows.add_audit(conn, starts[0], loaded=300)
        rows.add_audit(conn, starts[1], loaded=280, rejected=40, gate="failed")
        rows.add_audit(conn, starts[2], loaded=310, rejected=5)
        rows.add_audit(conn, latest - 25 * 6 * STEP, loaded=999)  # 25 hours ago
        rows.add_audit(conn, latest, loaded=777, dag_id="15_ingest_labels")
        rows.add_version(conn, "v2", trained=latest - 30 * STEP)
        rows.set_alias(conn, "champion", "v2")
        rows.set_alias(conn, "challenger", "baseline_v1")
        rows.add_model_event(
            conn, "promote", "v2", "baseline_v1", {"evidence": {"mae_diff": -0.05, "ci_high": -0.02}}
        )
        # the latest interval's champion scores: 2 below 0, 6 in [0, 1), 2 at or above 1 (1.0 is an edge)
        rows.add_scores(conn, latest, "v2", [-1.0, -0.5, 0.1, 0.2, 0.3, 0.5, 0.7, 0.99, 1.0, 3.0])
        rows.add_scores(conn, latest, "baseline_v1", [5.0] * 10)  # another version: not counted
        rows.add_scores(conn, starts[0], "v2", [-9.0] * 4, prefix="old")  # an earlier interval: not counted
        for start, mae in zip(starts, (0.5, 0.45, 0.4), strict=True):
            rows.add_performance(conn, start, "v2", n_predictions=300, n_labeled=150, mae=mae)
            rows.add_performance(conn, start, "baseline_v1", n_predictions=300, n_labeled=150, mae=mae + 0.1)
        rows.add_drift(conn, latest, "v2", {"f1": 0.02, "f2": 0.15, "f3": 0.4, "score": 0.01})
        rows.add_drift(conn, starts[0], "v2", {"f1": 0.01, "f2": 0.01, "f3": 0.01, "score": 0.01})
        rows.add_comparison(conn, "baseline_v1", "v2", latest, diff=-0.05, ci=(-0.08, -0.02))
    return {"starts": starts, "latest": latest}


def test_without_a_login_api_clients_get_401_and_browsers_the_login_page(
    client: Any, fresh_migrated: str
) -> None:
    response = client.get("/etlml/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    browser = client.get("/etlml/", headers={"accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303
    assert browser.headers["location"].startswith("/auth/login?next=")
    assert "%2Fetlml%2F" in browser.headers["location"]


def test_a_forged_token_is_refused(client: Any, airflow_api: tuple[Any, dict[str, str]]) -> None:
    token = airflow_api[1]["admin"]
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    client.cookies.update({"_token": forged})
    assert client.get("/etlml/").status_code == 403
    client.cookies.clear()
    assert client.get("/etlml/", headers={"Authorization": f"Bearer {forged}"}).status_code == 403


def test_a_bearer_token_is_accepted_like_the_cookie(
    client: Any, airflow_api: tuple[Any, dict[str, str]], fresh_migrated: str
) -> None:
    response = client.get("/etlml/", headers={"Authorization": f"Bearer {airflow_api[1]['admin']}"})
    assert response.status_code == 200
    assert "<h1>etlml</h1>" in response.text


def test_the_plugin_is_loaded_once_with_a_navigation_entry(
    client: Any, airflow_api: tuple[Any, dict[str, str]]
) -> None:
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert errors == {}
    assert [p.name for p in plugins].count("etlml") == 1
    listed = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {airflow_api[1]['admin']}"})
    assert listed.status_code == 200, listed.text
    (etlml,) = [p for p in listed.json()["plugins"] if p["name"] == "etlml"]
    assert [(a["url_prefix"], a["name"]) for a in etlml["fastapi_apps"]] == [("/etlml", "etlml page")]
    (view,) = etlml["external_views"]
    assert (view["name"], view["href"], view["destination"], view["url_route"]) == (
        "etlml",
        "etlml/",
        "nav",
        "etlml",
    )


def test_the_page_shows_each_interval_with_its_events_rejected_share_and_gate(
    client: Any, viewer: dict[str, str], filled: dict[str, Any]
) -> None:
    html = get_page(client, viewer)
    table_rows = find(html, "tr", **{})
    interval_rows = [r for r in table_rows if "interval" in r.classes]
    assert [r.data("interval-start") for r in interval_rows] == [
        s.isoformat() for s in reversed(filled["starts"])
    ]
    shown = {
        r.data("interval-start"): {
            k: c.data(k)
            for c in r.children
            for k in ("events", "loaded", "rejected", "gate", "coverage")
            if c.data(k)
        }
        for r in interval_rows
    }
    first, failed, latest = (s.isoformat() for s in filled["starts"])
    assert shown[first] == {
        "events": "300",
        "loaded": "300",
        "rejected": "0",
        "gate": "passed",
        "coverage": "0.5",
    }
    assert shown[failed] == {
        "events": "320",
        "loaded": "280",
        "rejected": "40",
        "gate": "failed",
        "coverage": "0.5",
    }
    assert shown[latest]["events"] == "315"
    (share,) = [
        c
        for r in interval_rows
        if r.data("interval-start") == failed
        for c in r.children
        if c.data("rejected-share")
    ]
    assert float(share.data("rejected-share") or "nan") == pytest.approx(40 / 320)
    assert "12.5%" in share.text
    (gate,) = [
        c for r in interval_rows if r.data("interval-start") == failed for c in r.children if c.data("gate")
    ]
    assert "gate-failed" in gate.classes
    # the day-old interval and another DAG's audit are not shown
    assert "999" not in section(html, "intervals").text.replace(",", "")
    assert "777" not in section(html, "intervals").text.replace(",", "")
    # the events chart has a bar per interval, the failed one marked
    bars = [e for e in find(html, "g") if "bar" in e.classes]
    assert len(bars) == 3
    assert [b.data("interval-start") for b in bars if "gate-failed" in b.classes] == [failed]


def test_an_alerting_feature_is_coloured_alert_in_the_psi_grid(
    client: Any, viewer: dict[str, str], filled: dict[str, Any]
) -> None:
    html = get_page(client, viewer)
    latest = filled["latest"].isoformat()
    (row,) = find(html, "tr", interval_start=latest, version="v2")
    cells = {c.data("feature"): c for c in row.children if c.data("feature")}
    assert set(cells) == {"f1", "f2", "f3", "score"}
    assert "psi-alert" in cells["f3"].classes and cells["f3"].data("psi") == "0.4"
    assert cells["f3"].text.strip() == "0.400"
    assert "psi-warn" in cells["f2"].classes
    assert "psi-ok" in cells["f1"].classes and "psi-ok" in cells["score"].classes
    assert len(find(html, "tr", version="v2", interval_start=filled["starts"][0].isoformat())) == 1


def test_the_score_distribution_is_binned_by_the_champions_reference(
    client: Any, viewer: dict[str, str], filled: dict[str, Any]
) -> None:
    html = get_page(client, viewer)
    score = section(html, "score")
    (caption,) = [e for e in find(html, "p", version="v2") if e.data("n")]
    assert caption.data("interval-start") == filled["latest"].isoformat()
    assert caption.data("n") == "10"
    bins = [e for e in find(html, "tr") if e.data("bin") is not None]
    assert [(b.data("bin"), b.data("expected"), b.data("actual")) for b in bins] == [
        ("0", "0.25", "0.2"),
        ("1", "0.5", "0.6"),
        ("2", "0.25", "0.2"),
    ]
    assert "60.0%" in score.text


def test_realized_mae_per_version_and_label_coverage(
    client: Any, viewer: dict[str, str], filled: dict[str, Any]
) -> None:
    html = get_page(client, viewer)
    points = find(html, "circle")
    by_version: dict[str, list[tuple[str | None, str | None]]] = {}
    for p in points:
        by_version.setdefault(p.data("version") or "", []).append((p.data("interval-start"), p.data("mae")))
    starts = [s.isoformat() for s in filled["starts"]]
    assert by_version["v2"] == list(zip(starts, ["0.5", "0.45", "0.4"], strict=True))
    assert [m for _, m in by_version["baseline_v1"]] == ["0.6", "0.55", "0.5"]
    (summary,) = [e for e in find(html, "tr", version="v2") if "performance" in e.classes]
    assert summary.data("intervals") == "3" and summary.data("labeled") == "450"
    assert float(summary.data("mae") or "nan") == pytest.approx(0.45)
    coverage = [e for e in find(html, "rect") if "coverage" in e.classes]
    assert [(c.data("interval-start"), c.data("coverage")) for c in coverage] == [(s, "0.5") for s in starts]


def test_champion_challenger_evidence_and_model_events(
    client: Any, viewer: dict[str, str], filled: dict[str, Any]
) -> None:
    html = get_page(client, viewer)
    (champion,) = find(html, "div", alias="champion")
    (challenger,) = find(html, "div", alias="challenger")
    assert champion.data("version") == "v2" and challenger.data("version") == "baseline_v1"
    assert "MAE 0.4100" in champion.text
    (evidence,) = find(html, "table", champion="baseline_v1", candidate="v2")
    assert (
        evidence.data("n"),
        evidence.data("mae-diff"),
        evidence.data("ci-low"),
        evidence.data("ci-high"),
    ) == (
        "450",
        "-0.05",
        "-0.08",
        "-0.02",
    )
    assert evidence.data("better") == "true"
    assert "the candidate is better" in section(html, "models").text
    events = [e for e in find(html, "tr") if "model-event" in e.classes]
    # newest first: the promotion, then what migrations 0002/0003 recorded
    assert (events[0].data("event"), events[0].data("version")) == ("promote", "v2")
    assert "ci_high" in events[0].text
    assert {e.data("event") for e in events} == {"promote", "register"}


def test_an_empty_warehouse_says_no_data_yet(
    client: Any, viewer: dict[str, str], fresh_migrated: str
) -> None:
    html = get_page(client, viewer)
    for ident in ("intervals", "drift", "score", "performance", "coverage"):
        assert "No data yet" in section(html, ident).text, ident
    # baseline_v1 has its reference profile (migration 0011), but scored no interval yet
    assert "baseline_v1 scored no interval in this window" in section(html, "score").text
    assert "No data yet: no comparison stored" in section(html, "models").text
    # the migrations' registry history is data already
    assert "No data yet" not in section(html, "events").text
    (champion,) = find(html, "div", alias="champion")
    assert champion.data("version") == "baseline_v1"


def test_an_unmigrated_warehouse_is_a_clear_error(
    client: Any, viewer: dict[str, str], fresh_warehouse: str
) -> None:
    client.cookies.update(viewer)
    response = client.get("/etlml/")
    assert response.status_code == 503
    assert "apply the migrations" in response.text
    assert "00_init_schema" in response.text


def test_a_missing_connection_is_a_clear_error(
    client: Any, viewer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETLML_WAREHOUSE_CONN_ID", "no_such_warehouse")
    client.cookies.update(viewer)
    response = client.get("/etlml/")
    assert response.status_code == 503
    assert "AIRFLOW_CONN_NO_SUCH_WAREHOUSE" in response.text


def test_the_page_reads_only(
    client: Any, viewer: dict[str, str], filled: dict[str, Any], fresh_migrated: str
) -> None:
    """Rendering twice changes nothing stored (the page's transaction is read-only)."""
    with psycopg.connect(fresh_migrated) as conn:
        before = conn.execute("SELECT count(*), max(xmin::text) FROM run_audit").fetchone()
    first, second = get_page(client, viewer), get_page(client, viewer)
    # the same rows and cells both times (chart coordinates move with the clock)
    assert [(e.attrs, e.text) for e in find(first, "tr")] == [(e.attrs, e.text) for e in find(second, "tr")]
    with psycopg.connect(fresh_migrated) as conn:
        assert conn.execute("SELECT count(*), max(xmin::text) FROM run_audit").fetchone() == before


def test_the_pipeline_role_can_read_everything_the_page_shows(
    client: Any, viewer: dict[str, str], filled: dict[str, Any], pipeline_role: tuple[str, str]
) -> None:
    """In Compose the API server logs in to the warehouse as the pipeline role, like every service."""
    html = get_page(client, viewer)
    assert [e.classes for e in find(html, "tr", interval_start=filled["latest"].isoformat())] == [
        {"interval"},
        {"drift"},
    ]
    assert len([e for e in find(html, "tr") if e.data("bin") is not None]) == 3
    assert find(html, "table", champion="baseline_v1", candidate="v2")


def test_a_champion_that_scored_no_interval_of_the_window_says_so(
    client: Any, viewer: dict[str, str], fresh_migrated: str
) -> None:
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        latest = rows.latest_closed(conn)
        rows.add_audit(conn, latest, loaded=10)
        rows.add_scores(conn, latest, "baseline_v1", [0.5] * 10)
        rows.add_version(conn, "v2")
        rows.set_alias(conn, "champion", "v2")  # promoted after the interval ran: no scores of its own
    html = get_page(client, viewer)
    assert "No data yet: the champion v2 scored no interval in this window" in section(html, "score").text
    assert [e.data("events") for e in find(html, "td") if e.data("events")] == ["10"]


def test_the_interval_table_shows_the_ledger_and_the_gaps(
    client: Any, viewer: dict[str, str], filled: dict[str, Any], fresh_migrated: str
) -> None:
    first, failed, latest = filled["starts"]
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        conn.execute(
            "UPDATE run_audit SET model_versions = '{v2,baseline_v1}', etlml_version = '9.9.9', "
            "dag_version_id = 'dv-1', smaller_source_refused = '{\"missing\": [\"x\"]}' "
            "WHERE dag_id = '10_etl_ml_pipeline' AND interval_start = %s",
            (latest,),
        )
    html = get_page(client, viewer)
    rows = {r.data("interval-start"): r for r in find(html, "tr") if "interval" in r.classes}

    def cell(start: datetime, name: str) -> str | None:
        return next((c.data(name) for c in rows[start.isoformat()].children if c.data(name)), None)

    assert cell(latest, "versions") == "v2, baseline_v1"
    assert (cell(latest, "etlml-version"), cell(latest, "dag-version")) == ("9.9.9", "dv-1")
    assert cell(latest, "flags") == "smaller_source_refused"
    assert cell(failed, "flags") == "gap"  # its run failed the gate: nothing passed for it yet
    assert cell(first, "flags") is None
    # an ended interval without any run is listed as a gap (the latest first)
    gaps = [r.data("interval-start") for r in find(html, "tr") if "gap" in r.classes]
    assert gaps[0] == (first - STEP).isoformat()
    assert latest.isoformat() not in gaps and failed.isoformat() not in gaps
