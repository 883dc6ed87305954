"""The etlml page's HTML from dashboard snapshots, without a server: empty states, escaping, no
resource from elsewhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from etlml.ui import render
from etlml.warehouse.dashboard import (
    Dashboard,
    IntervalRow,
    ModelEventRow,
    PerformanceRow,
    ScoreBin,
    ScoreDistribution,
)
from tests.page_rows import elements, find

NOW = datetime(2026, 11, 26, 12, 3, tzinfo=UTC)


def test_an_empty_snapshot_renders_every_section_with_no_data_yet() -> None:
    html = render.page(Dashboard(now=NOW, window=timedelta(hours=24), score_missing="no champion is set"))
    sections = {e.attrs["id"]: e.text for e in elements(html) if e.tag == "section"}
    assert set(sections) == {
        "models",
        "intervals",
        "drift",
        "score",
        "performance",
        "estimated",
        "coverage",
        "events",
    }
    for ident in ("intervals", "drift", "score", "performance", "estimated", "coverage", "events"):
        assert "No data yet" in sections[ident], ident
    assert "no champion is set" in sections["score"]
    assert "none set" in sections["models"]


def test_stored_text_is_escaped_and_nothing_is_loaded_from_elsewhere() -> None:
    event = ModelEventRow(
        1, "promote", "v2", None, "<script>alert(1)</script>", NOW, {"note": "<img src=x onerror=alert(1)>"}
    )
    html = render.page(Dashboard(now=NOW, window=timedelta(hours=24), events=[event]))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # no external resource: no src/href attribute at all, and no URL but the SVG namespace
    assert not [e for e in elements(html) if "src" in e.attrs or "href" in e.attrs]
    assert set(re.findall(r"https?://[^'\" ]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_score_bins_show_their_ranges_and_both_shares() -> None:
    score = ScoreDistribution(
        "v2",
        NOW - timedelta(minutes=13),
        NOW - timedelta(minutes=3),
        10,
        [ScoreBin(None, 0.0, 0.25, 0.2), ScoreBin(0.0, 1.0, 0.5, 0.6), ScoreBin(1.0, None, 0.25, 0.2)],
    )
    html = render.page(Dashboard(now=NOW, window=timedelta(hours=24), score=score))
    rows = [r for r in find(html, "tr") if r.data("bin") is not None]
    assert [[c.text for c in r.children] for r in rows] == [
        ["0", "< 0.00", "25.0%", "20.0%"],
        ["1", "0.00 to 1.00", "50.0%", "60.0%"],
        ["2", "≥ 1.00", "25.0%", "20.0%"],
    ]
    bars = [e for e in find(html, "rect") if e.data("bin") == "1"]
    assert sorted(e.attrs["class"] for e in bars) == ["actual", "expected"]
    # the tallest bar (60%) spans the chart's full height, the reference's 50% five sixths of it
    heights = {e.attrs["class"]: float(e.attrs["height"]) for e in bars}
    assert abs(heights["expected"] / heights["actual"] - 0.5 / 0.6) < 0.01


def test_the_error_page_says_what_to_do() -> None:
    html = render.error("the Airflow connection 'warehouse' is not defined: set AIRFLOW_CONN_WAREHOUSE=...")
    assert "cannot be read" in html and "AIRFLOW_CONN_WAREHOUSE" in html


def interval(start: datetime, loaded: int, gate: str = "passed") -> IntervalRow:
    end = start + timedelta(minutes=10)
    return IntervalRow(start, end, "simulator", loaded, loaded, 0, 0, 0.0, 0.05, gate, end, None, None)


def test_a_few_intervals_fill_the_time_axis_instead_of_a_days_width() -> None:
    """Two intervals 30 and 20 minutes back: the axis starts at the earliest bound of an hour back, so a
    10-minute interval is a sixth of the plot, and ticks fall every 10 minutes on round times."""
    first = datetime(2026, 11, 26, 11, 30, tzinfo=UTC)
    rows = [interval(first, 200), interval(first + timedelta(minutes=10), 300, gate="failed")]
    html = render.page(Dashboard(now=NOW, window=timedelta(hours=24), intervals=rows))
    bars = [e for e in find(html, "rect") if "loaded" in e.classes]
    assert [b.data("loaded") for b in bars] == ["200", "300"]
    xs = [float(b.attrs["x"]) for b in bars]
    plot = render.WIDTH - render.PAD_LEFT - 4
    assert xs[1] - xs[0] == pytest.approx(plot / 6, abs=0.2)
    # the axis runs from 11:03 (an hour before NOW) to NOW: 11:30 lies 27/60 along it
    assert xs[0] == pytest.approx(render.PAD_LEFT + plot * 27 / 60, abs=0.2)
    ticks = [e.text for e in elements(html) if e.tag == "text" and ":" in e.text]
    assert ticks == ["11:10", "11:20", "11:30", "11:40", "11:50", "12:00"]
    # the taller bar is the failed interval's, drawn as failed
    (failed,) = [e for e in find(html, "g") if "gate-failed" in e.classes]
    assert failed.data("interval-start") == rows[1].interval_start.isoformat()


def test_estimated_and_realized_mae_share_one_chart_per_version() -> None:
    """The estimate is drawn from the moment an interval is scored, the realized MAE once labels came;
    an estimate above its threshold is marked as an alert."""
    first = datetime(2026, 11, 26, 11, 20, tzinfo=UTC)

    def row(k: int, version: str, estimated: float | None, mae: float | None) -> PerformanceRow:
        at = first + timedelta(minutes=10 * k)
        band = None if estimated is None else (estimated - 0.01, estimated + 0.01)
        return PerformanceRow(
            at,
            at + timedelta(minutes=10),
            version,
            2000,
            0 if mae is None else 2000,
            mae,
            mae,
            0.0,
            estimated,
            *(band or (None, None)),
            None if estimated is None else 0.3,
            None if estimated is None else estimated > 0.3,
        )

    rows = [row(0, "baseline_v1", 0.21, 0.2), row(1, "baseline_v1", 0.45, None), row(0, "v2", 0.1, 0.11)]
    rows.append(row(0, "v3", None, 0.5))  # no estimator: no chart of its own
    html = render.page(Dashboard(now=NOW, window=timedelta(hours=24), performance=rows))
    charts = [
        e for e in elements(html) if e.tag == "svg" and "estimated and realized" in e.attrs["aria-label"]
    ]
    assert [c.attrs["aria-label"].rsplit(" ", 1)[-1] for c in charts] == ["baseline_v1", "v2"]
    points = find(html, "circle", version="baseline_v1")
    estimates = [p for p in points if "estimate" in p.classes]
    assert [(p.data("estimated-mae"), p.data("alert")) for p in estimates] == [
        ("0.21", "False"),
        ("0.45", "True"),
    ]
    assert "alert" in estimates[1].classes and estimates[1].data("mae") is None
