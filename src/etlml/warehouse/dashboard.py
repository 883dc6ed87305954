"""What the etlml page shows, read from the warehouse in one snapshot: the pipeline's intervals, drift,
realized accuracy, the score's distribution against its reference, the model aliases, the latest
comparison and the latest registry events. Read only; every query is a file in ``sql/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row

from etlml import settings
from etlml.interval import on_grid
from etlml.warehouse import runs
from etlml.warehouse.connection import query
from etlml.warehouse.runs import IntervalStatus

PIPELINE_DAG_ID = "10_etl_ml_pipeline"
DEFAULT_WINDOW = timedelta(hours=24)
TEN = timedelta(minutes=10)
DEFAULT_EVENTS_SHOWN = 15
_Row = TypeVar("_Row")


@dataclass(frozen=True)
class IntervalRow:
    """One interval of the pipeline: its latest load's accounting and its label coverage."""

    interval_start: datetime
    interval_end: datetime
    source: str
    extracted: int
    loaded: int
    rejected: int
    deduplicated: int
    rejected_share: float
    max_rejected_share: float
    gate: str
    checked_at: datetime
    n_predictions: int | None
    n_labeled: int | None

    @property
    def label_coverage(self) -> float | None:
        """Labelled share of the interval's predictions; None before monitoring has counted them."""
        if self.n_predictions is None or self.n_labeled is None or self.n_predictions == 0:
            return None
        return self.n_labeled / self.n_predictions


@dataclass(frozen=True)
class DriftRow:
    interval_start: datetime
    interval_end: datetime
    model_version: str
    feature: str
    n: int
    psi: float | None
    missing_share: float
    status: str


@dataclass(frozen=True)
class PerformanceRow:
    interval_start: datetime
    interval_end: datetime
    model_version: str
    n_predictions: int
    n_labeled: int
    mae: float | None
    rmse: float | None
    bias: float | None
    estimated_mae: float | None = None
    estimated_mae_low: float | None = None
    estimated_mae_high: float | None = None
    estimate_threshold: float | None = None
    estimate_alert: bool | None = None


@dataclass(frozen=True)
class AliasRow:
    alias: str
    model_version: str
    assigned_at: datetime
    kind: str
    description: str
    training_from: datetime | None
    training_to: datetime | None
    validation_metrics: dict[str, Any] | None


@dataclass(frozen=True)
class ComparisonRow:
    champion: str
    candidate: str
    window_from: datetime
    window_to: datetime
    n: int
    champion_mae: float | None
    candidate_mae: float | None
    champion_rmse: float | None
    candidate_rmse: float | None
    mae_diff: float | None
    ci_low: float | None
    ci_high: float | None
    bootstrap_samples: int
    seed: int
    actor: str
    computed_at: datetime

    @property
    def candidate_better(self) -> bool:
        """The rule of ``promote --if-better``: the interval of the MAE difference lies wholly below 0."""
        return self.ci_high is not None and self.ci_high < 0


@dataclass(frozen=True)
class ModelEventRow:
    event_id: int
    event: str
    model_version: str | None
    previous_version: str | None
    actor: str
    at: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class ScoreBin:
    """One bin of the score's reference profile: its range, the reference share and the interval's."""

    low: float | None
    high: float | None
    expected: float
    actual: float


@dataclass(frozen=True)
class ScoreDistribution:
    """The champion's scores in one interval against the score's reference profile."""

    model_version: str
    interval_start: datetime
    interval_end: datetime
    n: int
    bins: list[ScoreBin]


@dataclass(frozen=True)
class Dashboard:
    """Everything the page shows, read in one transaction at ``now`` (the database's clock)."""

    now: datetime
    window: timedelta
    intervals: list[IntervalRow] = field(default_factory=list)
    drift: list[DriftRow] = field(default_factory=list)
    performance: list[PerformanceRow] = field(default_factory=list)
    aliases: list[AliasRow] = field(default_factory=list)
    comparison: ComparisonRow | None = None
    events: list[ModelEventRow] = field(default_factory=list)
    score: ScoreDistribution | None = None
    # why there is no score distribution (no champion, no reference profile, no scored interval)
    score_missing: str = ""
    # where each interval of the window stands (etlml runs status without reading the sources)
    status: list[IntervalStatus] = field(default_factory=list)


def read(
    conn: psycopg.Connection[Any],
    *,
    window: timedelta = DEFAULT_WINDOW,
    dag_id: str = PIPELINE_DAG_ID,
    events_shown: int = DEFAULT_EVENTS_SHOWN,
) -> Dashboard:
    """Read the page's data: intervals that started within ``window`` before now, and the registry.
    One transaction, so every part is read at the same ``now()`` (give ``conn`` REPEATABLE READ for one
    snapshot too)."""
    params = {"window": window, "dag_id": dag_id, "limit": events_shown}
    with conn.transaction():
        now_row = conn.execute("SELECT now()").fetchone()
        assert now_row is not None
        score, score_missing = _score(conn, params)
        now = now_row[0]
        return Dashboard(
            now=now_row[0],
            window=window,
            intervals=_rows(conn, IntervalRow, "page_intervals", params),
            drift=_rows(conn, DriftRow, "page_drift", params),
            performance=_rows(conn, PerformanceRow, "page_performance", params),
            aliases=_rows(conn, AliasRow, "page_aliases", params),
            comparison=next(iter(_rows(conn, ComparisonRow, "page_latest_comparison", params)), None),
            events=_rows(conn, ModelEventRow, "page_model_events", params),
            score=score,
            score_missing=score_missing,
            status=_status(conn, dag_id, now, window),
        )


def _status(
    conn: psycopg.Connection[Any], dag_id: str, now: datetime, window: timedelta
) -> list[IntervalStatus]:
    """The intervals from ``window`` back (not before ``ETLML_START_DATE``) to the one running now."""
    start = max(on_grid(now - window), on_grid(settings.start_date(), up=True))
    end = on_grid(now) + TEN
    return runs.status(conn, dag_id, start, end, now) if start < end else []


def _rows(conn: psycopg.Connection[Any], kind: type[_Row], name: str, params: dict[str, Any]) -> list[_Row]:
    with conn.cursor(row_factory=class_row(kind)) as cur:
        return cur.execute(query(name), params).fetchall()


def _score(conn: psycopg.Connection[Any], params: dict[str, Any]) -> tuple[ScoreDistribution | None, str]:
    champion = conn.execute(query("page_champion_profile")).fetchone()
    if champion is None:
        return None, "no champion is set"
    version, profile = champion
    if not isinstance(profile, dict) or not isinstance(profile.get("edges"), list):
        return None, f"the champion {version} has no reference profile of its score"
    counts = conn.execute(query("page_score_shares"), params).fetchall()
    if not counts:
        return None, f"the champion {version} scored no interval in this window"
    edges = [float(e) for e in profile["edges"]]
    expected = [float(p) for p in profile.get("expected", [])]
    by_bin = {int(b): int(n) for _, _, _, b, n in counts}
    total = sum(by_bin.values())
    bounds: list[float | None] = [None, *edges, None]
    bins = [
        ScoreBin(
            low=bounds[i],
            high=bounds[i + 1],
            expected=expected[i] if i < len(expected) else 0.0,
            actual=by_bin.get(i, 0) / total,
        )
        for i in range(len(edges) + 1)
    ]
    start, end = counts[0][0], counts[0][1]
    return ScoreDistribution(version, start, end, total, bins), ""
