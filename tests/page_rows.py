"""Known warehouse rows for the etlml page's tests, written with plain SQL the way the pipeline, 30_monitor
and `etlml models` write them, and a reader of the page's HTML that finds elements by their data
attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from psycopg.types.json import Jsonb

PIPELINE = "10_etl_ml_pipeline"
STEP = timedelta(minutes=10)
# the score's reference profile of the versions added here: bins (-inf, 0), [0, 1), [1, +inf)
SCORE_PROFILE = {"edges": [0.0, 1.0], "expected": [0.25, 0.5, 0.25], "missing_share": 0.0, "n": 1000}
INPUT_PROFILE = {"edges": [-1.0, 0.0, 1.0], "expected": [0.2, 0.3, 0.3, 0.2], "missing_share": 0.0, "n": 1000}


def latest_closed(conn: Any) -> datetime:
    """The start of the latest closed 10-minute interval by the database's clock."""
    row = conn.execute(
        "SELECT date_bin('10 minutes', now(), TIMESTAMPTZ '2000-01-01 00:00+00') - interval '10 minutes'"
    ).fetchone()
    return row[0]  # type: ignore[no-any-return]


def add_audit(
    conn: Any,
    start: datetime,
    *,
    loaded: int,
    rejected: int = 0,
    gate: str = "passed",
    dag_id: str = PIPELINE,
    max_rejected_share: float = 0.05,
) -> None:
    extracted = loaded + rejected
    conn.execute(
        "INSERT INTO run_audit (dag_id, interval_start, interval_end, source, extracted, loaded, rejected, "
        "deduplicated, rejected_share, max_rejected_share, gate, by_reason, extra_fields, "
        "extra_field_names, imputed, written_by_run) VALUES (%s, %s, %s, 'simulator', %s, %s, %s, 0, %s, "
        "%s, %s, '{}', '{}', 0, '{}', 'test/run')",
        (
            dag_id,
            start,
            start + STEP,
            extracted,
            loaded,
            rejected,
            rejected / extracted,
            max_rejected_share,
            gate,
        ),
    )


REFERENCE = {"f1": INPUT_PROFILE, "f2": INPUT_PROFILE, "f3": INPUT_PROFILE, "score": SCORE_PROFILE}


def add_version(
    conn: Any, version: str, *, reference: dict[str, Any] | None = REFERENCE, trained: datetime | None = None
) -> None:
    """A linear version with the reference profile ``reference`` (inputs and score)."""
    conn.execute(
        "INSERT INTO model_versions (model_version, kind, params, feature_stats, reference_profile, "
        "training_from, training_to, validation_metrics) VALUES (%s, 'linear', %s, %s, %s, %s, %s, %s)",
        (
            version,
            Jsonb({"coef": {"f1": 0.5, "f2": 0.1, "f3": 0.4}, "intercept": 0.0}),
            Jsonb({f: {"mean": 0.0, "std": 1.0} for f in ("f1", "f2", "f3")}),
            Jsonb(reference) if reference else None,
            trained,
            trained + timedelta(hours=1) if trained else None,
            Jsonb({"n": 1200, "mae": 0.41, "rmse": 0.52}) if trained else None,
        ),
    )


def set_alias(conn: Any, alias: str, version: str) -> None:
    conn.execute(
        "INSERT INTO model_aliases (alias, model_version) VALUES (%s, %s) "
        "ON CONFLICT (alias) DO UPDATE SET model_version = EXCLUDED.model_version",
        (alias, version),
    )


def add_scores(conn: Any, start: datetime, version: str, scores: list[float], prefix: str = "evt") -> None:
    """Events of the interval at ``start`` in processed_data, scored ``scores`` by ``version``."""
    conn.execute("SELECT etlml_ensure_partitions(%s, %s)", (start, start))
    for i, y_hat in enumerate(scores):
        event_id = f"{prefix}-{start:%H%M}-{i:04d}"
        ts = start + timedelta(seconds=i)
        conn.execute(
            "INSERT INTO processed_data (event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, "
            "f2_imputed, f3_imputed, normalized_with, interval_start, interval_end) VALUES "
            "(%s, %s, 1, 2, 3, 0, 0, 0, false, false, false, %s, %s, %s) ON CONFLICT DO NOTHING",
            (event_id, ts, version, start, start + STEP),
        )
        conn.execute(
            "INSERT INTO predictions (interval_start, event_id, model_version, y_hat, ts_utc, "
            "written_by_run) VALUES (%s, %s, %s, %s, %s, 'test/run')",
            (start, event_id, version, y_hat, ts),
        )


def add_performance(
    conn: Any, start: datetime, version: str, *, n_predictions: int, n_labeled: int, mae: float | None
) -> None:
    conn.execute(
        "INSERT INTO model_performance (interval_start, interval_end, model_version, n_predictions, "
        "n_labeled, mae, rmse, bias) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            start,
            start + STEP,
            version,
            n_predictions,
            n_labeled,
            mae,
            None if mae is None else mae * 1.25,
            None if mae is None else -mae / 10,
        ),
    )


def status_of(psi: float) -> str:
    return "alert" if psi >= 0.25 else "warn" if psi >= 0.1 else "ok"


def add_drift(conn: Any, start: datetime, version: str, psi: dict[str, float], n: int = 300) -> None:
    for feature, value in psi.items():
        conn.execute(
            "INSERT INTO feature_drift (interval_start, interval_end, model_version, feature, n, psi, "
            "missing_share, status) VALUES (%s, %s, %s, %s, %s, %s, 0.01, %s)",
            (start, start + STEP, version, feature, n, value, status_of(value)),
        )


def add_comparison(
    conn: Any, champion: str, candidate: str, start: datetime, *, diff: float, ci: tuple[float, float]
) -> None:
    conn.execute(
        "INSERT INTO model_comparisons (champion, candidate, window_from, window_to, n, champion_mae, "
        "candidate_mae, champion_rmse, candidate_rmse, mae_diff, ci_low, ci_high, bootstrap_samples, seed, "
        "actor) VALUES (%s, %s, %s, %s, 450, 0.5, %s, 0.62, 0.6, %s, %s, %s, 1000, 7, 'tester')",
        (champion, candidate, start - 2 * STEP, start + STEP, 0.5 + diff, diff, ci[0], ci[1]),
    )


def add_model_event(
    conn: Any, event: str, version: str, previous: str | None, details: dict[str, Any]
) -> None:
    conn.execute(
        "INSERT INTO model_events (event, model_version, previous_version, actor, details) "
        "VALUES (%s, %s, %s, 'tester', %s)",
        (event, version, previous, Jsonb(details)),
    )


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def data(self, name: str) -> str | None:
        return self.attrs.get(f"data-{name}")


class _Reader(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if self.stack:
            self.stack[-1].children.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if self.stack:
            self.stack[-1].children.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text += data


def elements(html: str) -> list[Element]:
    """Every element of ``html``, in document order, with its attributes and its whole text."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.elements


def find(html: str, tag: str | None = None, **data: str) -> list[Element]:
    """Elements (of ``tag``) whose ``data-`` attributes (underscores as dashes) equal ``data``."""
    return [
        e
        for e in elements(html)
        if (tag is None or e.tag == tag) and all(e.data(k.replace("_", "-")) == v for k, v in data.items())
    ]


def section(html: str, ident: str) -> Element:
    (found,) = [e for e in elements(html) if e.tag == "section" and e.attrs.get("id") == ident]
    return found
