"""The etlml page as one HTML document with inline SVG charts, from a :class:`Dashboard` snapshot.

Pure: no I/O, no script, nothing loaded from elsewhere. Every number shown also sits in a ``data-``
attribute of its cell or mark, in full precision, so tests and scrapers need not parse display text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from html import escape

from etlml.warehouse.dashboard import (
    AliasRow,
    ComparisonRow,
    Dashboard,
    DriftRow,
    IntervalRow,
    ModelEventRow,
    PerformanceRow,
    ScoreDistribution,
)
from etlml.warehouse.runs import IntervalStatus

FEATURES = ("f1", "f2", "f3", "score")
REFRESH_SECONDS = 60
GAPS_SHOWN = 12
# one colour per model version, in the order the versions first appear
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 900, 180, 56, 28, 12
TICK_STEPS = tuple(timedelta(minutes=m) for m in (10, 30, 60, 120, 240, 360))
MAX_TICKS = 8
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def page(d: Dashboard) -> str:
    """The whole page."""
    hours = d.window / timedelta(hours=1)
    body = "\n".join(
        [
            f"<header><h1>etlml</h1><p class='sub'>the last {hours:g} hours, as of "
            f"<time data-now='{_iso(d.now)}'>{_stamp(d.now)}</time> UTC; refreshes every "
            f"{REFRESH_SECONDS} s</p></header>",
            _section("Models", "models", _models(d.aliases, d.comparison)),
            _section("Intervals of 10_etl_ml_pipeline", "intervals", _intervals(d)),
            _section("Drift: PSI per feature", "drift", _drift(d.drift)),
            _section("Score distribution against the reference", "score", _score(d.score, d.score_missing)),
            _section("Realized MAE per model version", "performance", _performance(d)),
            _section("Estimated and realized MAE, per model version", "estimated", _estimated(d)),
            _section("Label coverage", "coverage", _coverage(d)),
            _section("Recent model events", "events", _events(d.events)),
        ]
    )
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>etlml</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def error(message: str) -> str:
    """The page when the warehouse cannot be read: what is wrong and what to do."""
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'><title>etlml</title>"
        f"<style>{STYLE}</style></head>\n<body><header><h1>etlml</h1></header>"
        f"<p class='error'>The warehouse cannot be read: {escape(message)}</p></body></html>\n"
    )


def _section(title: str, ident: str, content: str) -> str:
    return f"<section id='{ident}'><h2>{escape(title)}</h2>\n{content}\n</section>"


def _empty(message: str) -> str:
    return f"<p class='empty'>No data yet: {escape(message)}</p>"


# --- models ---------------------------------------------------------------------------------------


def _models(aliases: Sequence[AliasRow], comparison: ComparisonRow | None) -> str:
    by_alias = {a.alias: a for a in aliases}
    cards = "".join(_alias_card(name, by_alias.get(name)) for name in ("champion", "challenger"))
    return f"<div class='cards'>{cards}</div>\n{_comparison(comparison)}"


def _alias_card(alias: str, row: AliasRow | None) -> str:
    if row is None:
        text = "none set" if alias == "champion" else "none shadowing (etlml models shadow VERSION)"
        return f"<div class='card' data-alias='{alias}'><h3>{alias}</h3><p class='empty'>{text}</p></div>"
    window = (
        f"{_stamp(row.training_from)} to {_stamp(row.training_to)}"
        if row.training_from and row.training_to
        else "not trained here"
    )
    metrics = row.validation_metrics or {}
    validation = (
        f"MAE {_num(metrics.get('mae'))}, RMSE {_num(metrics.get('rmse'))} on {metrics.get('n', '?')}"
        if metrics
        else "none recorded"
    )
    return (
        f"<div class='card' data-alias='{alias}' data-version='{escape(row.model_version)}'>"
        f"<h3>{alias}</h3><p class='version'>{escape(row.model_version)}</p><dl>"
        f"<dt>kind</dt><dd>{escape(row.kind)}</dd>"
        f"<dt>since</dt><dd>{_stamp(row.assigned_at)}</dd>"
        f"<dt>trained on</dt><dd>{window}</dd>"
        f"<dt>validation</dt><dd>{escape(validation)}</dd></dl></div>"
    )


def _comparison(c: ComparisonRow | None) -> str:
    if c is None:
        return _empty("no comparison stored; `etlml models compare` stores one")
    verdict = (
        "the candidate is better (the interval lies wholly below 0)"
        if c.candidate_better
        else "no evidence that the candidate is better"
    )
    rows = [
        ("champion", c.champion, "champion"),
        ("candidate", c.candidate, "candidate"),
        ("labelled events", f"{c.n:,}", "n"),
        ("window", f"{_stamp(c.window_from)} to {_stamp(c.window_to)}", "window"),
        ("MAE champion / candidate", f"{_num(c.champion_mae)} / {_num(c.candidate_mae)}", "mae"),
        ("RMSE champion / candidate", f"{_num(c.champion_rmse)} / {_num(c.candidate_rmse)}", "rmse"),
        (
            "MAE difference (candidate - champion)",
            f"{_num(c.mae_diff)}, 95% CI [{_num(c.ci_low)}, {_num(c.ci_high)}]",
            "diff",
        ),
        ("bootstrap", f"{c.bootstrap_samples:,} samples, seed {c.seed}", "bootstrap"),
        ("compared", f"{_stamp(c.computed_at)} by {c.actor}", "computed"),
    ]
    cells = "".join(f"<tr data-field='{k}'><th>{label}</th><td>{escape(v)}</td></tr>" for label, v, k in rows)
    attrs = _attrs(
        champion=c.champion,
        candidate=c.candidate,
        n=c.n,
        mae_diff=c.mae_diff,
        ci_low=c.ci_low,
        ci_high=c.ci_high,
        better=str(c.candidate_better).lower(),
    )
    better = "better" if c.candidate_better else "not-better"
    return (
        f"<h3>Latest comparison</h3><table class='evidence' {attrs}>{cells}</table>"
        f"<p class='verdict {better}'>{verdict}</p>"
    )


# --- intervals ------------------------------------------------------------------------------------


def _intervals(d: Dashboard) -> str:
    gaps = [s for s in d.status if s.gate is None and "gap" in s.flags]
    if not d.intervals:
        return _empty("no run of 10_etl_ml_pipeline in this window") + _gap_table(gaps)
    by_start = {s.interval_start: s for s in d.status}
    return _events_chart(d) + _interval_table(d.intervals, by_start) + _gap_table(gaps)


def _events_chart(d: Dashboard) -> str:
    top = max(r.extracted for r in d.intervals) or 1
    start, span = _time_axis(d)
    bar = _bar_width(span)
    marks = []
    for r in d.intervals:
        x = _x(r.interval_start, start, span)
        loaded_h = _h(r.loaded, top)
        rejected_h = _h(r.rejected, top)
        base = HEIGHT - PAD_BOTTOM
        title = f"{_span(r)}: {r.loaded:,} loaded, {r.rejected:,} rejected, gate {r.gate}"
        marks.append(
            f"<g class='bar gate-{escape(r.gate)}' {_attrs(interval_start=_iso(r.interval_start))}>"
            f"<title>{escape(title)}</title>"
            f"<rect class='loaded' x='{x:.1f}' y='{base - loaded_h:.1f}' width='{bar:.1f}' "
            f"height='{loaded_h:.1f}' {_attrs(loaded=r.loaded)}/>"
            f"<rect class='rejected' x='{x:.1f}' y='{base - loaded_h - rejected_h:.1f}' width='{bar:.1f}' "
            f"height='{rejected_h:.1f}' {_attrs(rejected=r.rejected)}/></g>"
        )
    legend = "<p class='legend'><span class='key loaded'></span>loaded <span class='key rejected'></span>"
    legend += "rejected <span class='key failed'></span>gate failed</p>"
    return _frame("events per interval", top, start, span, marks="".join(marks), fmt="{:,.0f}") + legend


def _interval_table(rows: Sequence[IntervalRow], status: dict[datetime, IntervalStatus]) -> str:
    head = (
        "<tr><th>interval (UTC)</th><th>source</th><th>events</th><th>loaded</th><th>rejected</th>"
        "<th>rejected share</th><th>gate</th><th>label coverage</th><th>versions</th><th>monitored</th>"
        "<th>stored by</th><th>flags</th></tr>"
    )
    lines = []
    for r in reversed(rows):
        coverage = r.label_coverage
        s = status.get(r.interval_start)
        lines.append(
            f"<tr class='interval' {_attrs(interval_start=_iso(r.interval_start))}>"
            f"<td>{_span(r)}</td><td>{escape(r.source)}</td>"
            f"<td class='num' {_attrs(events=r.extracted)}>{r.extracted:,}</td>"
            f"<td class='num' {_attrs(loaded=r.loaded)}>{r.loaded:,}</td>"
            f"<td class='num' {_attrs(rejected=r.rejected)}>{r.rejected:,}</td>"
            f"<td class='num' {_attrs(rejected_share=r.rejected_share)}>{_pct(r.rejected_share)}"
            f" <small>of {_pct(r.max_rejected_share)}</small></td>"
            f"<td class='gate gate-{escape(r.gate)}' {_attrs(gate=r.gate)}>{escape(r.gate)}</td>"
            f"<td class='num' {_attrs(coverage=coverage, labeled=r.n_labeled, predictions=r.n_predictions)}>"
            f"{_coverage_text(r)}</td>{_ledger_cells(s)}</tr>"
        )
    return f"<table class='grid'>{head}{''.join(lines)}</table>"


def _ledger_cells(s: IntervalStatus | None) -> str:
    """The versions scored, when last monitored, the code that stored the interval, and its flags."""
    if s is None:
        return "<td></td>" * 4
    versions = ", ".join(s.model_versions or [])
    stored_by = f"etlml {s.etlml_version}" if s.etlml_version else ""
    flags = " ".join(s.flags)
    return (
        f"<td {_attrs(versions=versions or None)}>{escape(versions)}</td>"
        f"<td {_attrs(monitored_at=_iso(s.monitored_at) if s.monitored_at else None)}>"
        f"{_hm(s.monitored_at) if s.monitored_at else '-'}</td>"
        f"<td {_attrs(etlml_version=s.etlml_version, dag_version=s.dag_version_id)}>{escape(stored_by)}</td>"
        f"<td class='flags' {_attrs(flags=flags or None)}>{escape(flags)}</td>"
    )


def _gap_table(gaps: Sequence[IntervalStatus]) -> str:
    """The ended intervals of the window with no stored run that passed its gate."""
    if not gaps:
        return ""
    shown = list(reversed(gaps))[:GAPS_SHOWN]
    rows = "".join(
        f"<tr class='gap' {_attrs(interval_start=_iso(g.interval_start))}>"
        f"<td>{_stamp(g.interval_start)}-{_hm(g.interval_end)}</td><td class='flags'>gap</td></tr>"
        for g in shown
    )
    more = f", the latest {len(shown)} shown" if len(shown) < len(gaps) else ""
    return (
        f"<p class='legend' {_attrs(gaps=len(gaps))}>{len(gaps)} ended interval(s) with no stored run"
        f"{more}: backfill them (<code>etlml runs gaps</code> lists them)</p>"
        f"<table class='grid gaps'><tr><th>interval (UTC)</th><th>flags</th></tr>{rows}</table>"
    )


def _coverage_text(r: IntervalRow) -> str:
    if r.label_coverage is None:
        return "<span class='muted'>not monitored yet</span>"
    return f"{_pct(r.label_coverage)} <small>{r.n_labeled:,} of {r.n_predictions:,}</small>"


# --- drift ----------------------------------------------------------------------------------------


def _drift(rows: Sequence[DriftRow]) -> str:
    if not rows:
        return _empty("no drift computed in this window; 30_monitor writes it")
    grid: dict[tuple[datetime, datetime, str], dict[str, DriftRow]] = {}
    for r in rows:
        grid.setdefault((r.interval_start, r.interval_end, r.model_version), {})[r.feature] = r
    head = "<tr><th>interval (UTC)</th><th>model version</th>"
    head += "".join(f"<th>{f}</th>" for f in FEATURES) + "</tr>"
    lines = []
    for (start, end, version), cells in sorted(grid.items(), key=lambda kv: kv[0], reverse=True):
        tds = "".join(_psi_cell(f, cells.get(f)) for f in FEATURES)
        attrs = _attrs(interval_start=_iso(start), version=version)
        lines.append(
            f"<tr class='drift' {attrs}><td>{_hm(start)}-{_hm(end)}</td><td>{escape(version)}</td>{tds}</tr>"
        )
    legend = (
        "<p class='legend'><span class='key psi-ok'></span>ok <span class='key psi-warn'></span>warn "
        "<span class='key psi-alert'></span>alert (status as 30_monitor stored it)</p>"
    )
    return f"<table class='grid psi-grid'>{head}{''.join(lines)}</table>{legend}"


def _psi_cell(feature: str, r: DriftRow | None) -> str:
    if r is None:
        return f"<td class='psi psi-none' data-feature='{feature}'>-</td>"
    title = f"{feature}: PSI {_num(r.psi)}, {r.n:,} values, {_pct(r.missing_share)} missing"
    attrs = _attrs(feature=feature, psi=r.psi, status=r.status, missing_share=r.missing_share, n=r.n)
    text = _num(r.psi, 3) if r.psi is not None else "no values"
    return f"<td class='psi psi-{escape(r.status)}' {attrs} title='{escape(title)}'>{text}</td>"


# --- score distribution ---------------------------------------------------------------------------


def _score(s: ScoreDistribution | None, missing: str) -> str:
    if s is None:
        return _empty(missing or "no scores in this window")
    top = max(max(b.expected, b.actual) for b in s.bins) or 1.0
    step = (WIDTH - PAD_LEFT) / len(s.bins)
    bar = step * 0.4
    marks, labels = [], []
    base = HEIGHT - PAD_BOTTOM
    for i, b in enumerate(s.bins):
        x = PAD_LEFT + i * step + step * 0.1
        for j, (kind, share) in enumerate((("expected", b.expected), ("actual", b.actual))):
            h = _h(share, top)
            marks.append(
                f"<rect class='{kind}' x='{x + j * bar:.1f}' y='{base - h:.1f}' width='{bar:.1f}' "
                f"height='{h:.1f}' {_attrs(bin=i, share=share)}><title>bin {i} {kind}: {_pct(share)}"
                "</title></rect>"
            )
        labels.append(
            f"<text x='{x + bar:.1f}' y='{HEIGHT - 10}' text-anchor='middle'>"
            f"{_bin_label(b.low, b.high)}</text>"
        )
    axis = f"<text x='{PAD_LEFT - 6}' y='{PAD_TOP + 10}' text-anchor='end'>{_pct(top)}</text>"
    svg = _svg("score distribution", axis + "".join(marks) + "".join(labels))
    rows = "".join(
        f"<tr {_attrs(bin=i, expected=b.expected, actual=b.actual)}><td>{i}</td>"
        f"<td>{_bin_label(b.low, b.high)}</td><td class='num'>{_pct(b.expected)}</td>"
        f"<td class='num'>{_pct(b.actual)}</td></tr>"
        for i, b in enumerate(s.bins)
    )
    caption = (
        f"<p {_attrs(version=s.model_version, interval_start=_iso(s.interval_start), n=s.n)}>"
        f"Champion <b>{escape(s.model_version)}</b>, interval {_hm(s.interval_start)}-{_hm(s.interval_end)} "
        f"UTC, {s.n:,} scores, binned by the reference profile of its score.</p>"
    )
    legend = "<p class='legend'><span class='key expected'></span>reference <span class='key actual'></span>"
    legend += "this interval</p>"
    table = f"<table class='grid score-bins'>{_head('bin', 'range', 'reference', 'interval')}{rows}</table>"
    return caption + svg + legend + table


def _bin_label(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "all"
    if low is None:
        return f"&lt; {_num(high, 2)}"
    if high is None:
        return f"&#8805; {_num(low, 2)}"
    return f"{_num(low, 2)} to {_num(high, 2)}"


# --- realized MAE and coverage --------------------------------------------------------------------


def _performance(d: Dashboard) -> str:
    points = [p for p in d.performance if p.mae is not None]
    if not points:
        return _empty("no labelled predictions monitored in this window; 30_monitor writes realized MAE")
    top = max(p.mae or 0.0 for p in points) or 1.0
    start, span = _time_axis(d)
    colours = _colours(p.model_version for p in points)
    marks = []
    for version, colour in colours.items():
        series = [p for p in points if p.model_version == version]
        coords = [
            (_x(p.interval_start, start, span) + _bar_width(span) / 2, _y(p.mae or 0.0, top)) for p in series
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        marks.append(f"<polyline class='series' stroke='{colour}' points='{path}'/>")
        marks.extend(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}' "
            f"{_attrs(version=version, interval_start=_iso(p.interval_start), mae=p.mae)} "
            f"{_attrs(n_labeled=p.n_labeled)}>"
            f"<title>{escape(version)} {_hm(p.interval_start)}: MAE {_num(p.mae)} on {p.n_labeled:,}</title>"
            "</circle>"
            for p, (x, y) in zip(series, coords, strict=True)
        )
    legend = "<p class='legend'>" + " ".join(
        f"<span class='key' style='background:{c}'></span>{escape(v)}" for v, c in colours.items()
    )
    chart = _frame("realized MAE", top, start, span, marks="".join(marks)) + legend + "</p>"
    return chart + _performance_table(points)


def _estimated(d: Dashboard) -> str:
    """One chart per version with an error estimator: the estimated MAE (dashed, its band shaded)
    from the moment an interval is scored, the realized MAE (solid) once its labels arrive, and the
    alert threshold (dotted); an interval whose estimate crossed it is marked red."""
    versions = dict.fromkeys(p.model_version for p in d.performance if p.estimated_mae is not None)
    if not versions:
        return _empty(
            "no version has an error estimator: `etlml models train` fits one, `etlml models "
            "fit-estimator VERSION --from ... --to ...` fits one for an existing version"
        )
    start, span = _time_axis(d)
    return "".join(
        _estimated_chart(v, [p for p in d.performance if p.model_version == v], start, span) for v in versions
    )


def _estimated_chart(version: str, rows: Sequence[PerformanceRow], start: datetime, span: timedelta) -> str:
    half = _bar_width(span) / 2
    estimated = [p for p in rows if p.estimated_mae is not None]
    realized = [p for p in rows if p.mae is not None]
    values = [v for p in rows for v in (p.mae, p.estimated_mae_high, p.estimate_threshold) if v is not None]
    top = max(values, default=1.0) * 1.1 or 1.0

    def line(points: Sequence[tuple[datetime, float]], css: str) -> str:
        path = " ".join(f"{_x(at, start, span) + half:.1f},{_y(v, top):.1f}" for at, v in points)
        return f"<polyline class='{css}' points='{path}'/>"

    upper = [(p.interval_start, p.estimated_mae_high or 0.0) for p in estimated]
    lower = [(p.interval_start, p.estimated_mae_low or 0.0) for p in reversed(estimated)]
    band = " ".join(f"{_x(at, start, span) + half:.1f},{_y(v, top):.1f}" for at, v in upper + lower)
    marks = [
        f"<polygon class='band' points='{band}'/>",
        line([(p.interval_start, p.estimated_mae or 0.0) for p in estimated], "estimated"),
        line([(p.interval_start, p.mae or 0.0) for p in realized], "realized"),
    ]
    thresholds = {p.estimate_threshold for p in estimated if p.estimate_threshold is not None}
    marks += [
        f"<line class='threshold' x1='{PAD_LEFT}' x2='{WIDTH}' y1='{_y(t, top):.1f}' y2='{_y(t, top):.1f}'/>"
        for t in thresholds
    ]
    for p in estimated:
        x, y = _x(p.interval_start, start, span) + half, _y(p.estimated_mae or 0.0, top)
        kind = "alert" if p.estimate_alert else "ok"
        where = _attrs(version=version, interval_start=_iso(p.interval_start))
        figures = _attrs(
            estimated_mae=p.estimated_mae,
            low=p.estimated_mae_low,
            high=p.estimated_mae_high,
            mae=p.mae,
            alert=bool(p.estimate_alert),
        )
        band_text = f"{_num(p.estimated_mae_low)}-{_num(p.estimated_mae_high)}"
        marks.append(
            f"<circle class='estimate {kind}' cx='{x:.1f}' cy='{y:.1f}' r='3' {where} {figures}>"
            f"<title>{escape(version)} {_hm(p.interval_start)}: estimated MAE {_num(p.estimated_mae)} "
            f"({band_text}), realized {_num(p.mae)}</title></circle>"
        )
    legend = (
        f"<p class='legend'><b>{escape(version)}</b>: <span class='key est'></span>estimated MAE (band: "
        "3 standard errors) <span class='key real'></span>realized MAE <span class='key thr'></span>"
        "alert threshold</p>"
    )
    return _frame(f"estimated and realized MAE of {version}", top, start, span, marks="".join(marks)) + legend


def _performance_table(points: Sequence[PerformanceRow]) -> str:
    head = (
        "<tr><th>model version</th><th>intervals</th><th>labelled</th><th>MAE (weighted)</th>"
        "<th>latest interval</th><th>latest MAE</th><th>latest RMSE</th><th>latest bias</th></tr>"
    )
    lines = []
    for version in dict.fromkeys(p.model_version for p in points):
        series = [p for p in points if p.model_version == version]
        labelled = sum(p.n_labeled for p in series)
        weighted = sum((p.mae or 0.0) * p.n_labeled for p in series) / labelled if labelled else None
        last = series[-1]
        attrs = _attrs(version=version, intervals=len(series), labeled=labelled, mae=weighted)
        lines.append(
            f"<tr class='performance' {attrs}><td>{escape(version)}</td><td class='num'>{len(series)}</td>"
            f"<td class='num'>{labelled:,}</td><td class='num'>{_num(weighted)}</td>"
            f"<td>{_hm(last.interval_start)}</td><td class='num' {_attrs(latest_mae=last.mae)}>"
            f"{_num(last.mae)}</td><td class='num'>{_num(last.rmse)}</td>"
            f"<td class='num'>{_num(last.bias)}</td>"
            "</tr>"
        )
    return f"<table class='grid'>{head}{''.join(lines)}</table>"


def _coverage(d: Dashboard) -> str:
    rows = [r for r in d.intervals if r.label_coverage is not None]
    if not rows:
        return _empty("label coverage appears once 30_monitor has counted an interval's labels")
    start, span = _time_axis(d)
    bar = _bar_width(span)
    marks = []
    for r in rows:
        share = r.label_coverage or 0.0
        h = _h(share, 1.0)
        marks.append(
            f"<rect class='coverage' x='{_x(r.interval_start, start, span):.1f}' "
            f"y='{HEIGHT - PAD_BOTTOM - h:.1f}' width='{bar:.1f}' height='{h:.1f}' "
            f"{_attrs(interval_start=_iso(r.interval_start), coverage=share)}>"
            f"<title>{_span(r)}: {_pct(share)} labelled</title></rect>"
        )
    return _frame("labelled share of predictions", 1.0, start, span, marks="".join(marks), fmt="{:.0%}")


# --- model events ---------------------------------------------------------------------------------


def _events(rows: Sequence[ModelEventRow]) -> str:
    if not rows:
        return _empty("no model events")
    head = _head("at (UTC)", "event", "version", "before", "actor", "details")
    lines = "".join(
        f"<tr class='model-event' {_attrs(event=e.event, version=e.model_version)}>"
        f"<td>{_stamp(e.at)}</td><td>{escape(e.event)}</td><td>{escape(e.model_version or '')}</td>"
        f"<td>{escape(e.previous_version or '')}</td><td>{escape(e.actor)}</td>"
        f"<td class='details'>{_details(e.details)}</td></tr>"
        for e in rows
    )
    return f"<table class='grid'>{head}{lines}</table>"


def _details(details: dict[str, object]) -> str:
    if not details:
        return ""
    text = json.dumps(details, sort_keys=True, default=str)
    short = text if len(text) <= 160 else text[:157] + "..."
    return f"<code title='{escape(text)}'>{escape(short)}</code>"


# --- SVG and formatting helpers -------------------------------------------------------------------


def _frame(
    label: str, top: float, start: datetime, window: timedelta, *, marks: str, fmt: str = "{:.3g}"
) -> str:
    """A time chart: y axis from 0 to ``top``, x axis from ``start`` over ``window`` with round ticks."""
    base = HEIGHT - PAD_BOTTOM
    ticks = []
    step = next((t for t in TICK_STEPS if window / t <= MAX_TICKS), TICK_STEPS[-1])
    tick = start + (EPOCH - start) % step
    while tick < start + window:
        x = _x(tick, start, window)
        if x > WIDTH - 20:  # a label there would be cut off
            break
        ticks.append(
            f"<line class='tick' x1='{x:.1f}' x2='{x:.1f}' y1='{PAD_TOP}' y2='{base}'/>"
            f"<text x='{x:.1f}' y='{HEIGHT - 10}' text-anchor='middle'>{_hm(tick)}</text>"
        )
        tick += step
    axis = (
        f"<line class='axis' x1='{PAD_LEFT}' x2='{WIDTH}' y1='{base}' y2='{base}'/>"
        f"<text x='{PAD_LEFT - 6}' y='{PAD_TOP + 10}' text-anchor='end'>{escape(fmt.format(top))}</text>"
        f"<text x='{PAD_LEFT - 6}' y='{base}' text-anchor='end'>0</text>"
    )
    return _svg(label, "".join(ticks) + axis + marks)


def _head(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"


def _svg(label: str, content: str) -> str:
    return (
        f"<svg class='chart' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label='{escape(label)}' "
        f"xmlns='http://www.w3.org/2000/svg'>{content}</svg>"
    )


def _time_axis(d: Dashboard) -> tuple[datetime, timedelta]:
    """The time charts' x axis: from the earliest interval shown (at most the window back, at least an
    hour back) to now, so a few intervals are not lost in a day's width."""
    first = min(
        [r.interval_start for r in d.intervals] + [p.interval_start for p in d.performance],
        default=d.now - d.window,
    )
    start = min(max(first, d.now - d.window), d.now - timedelta(hours=1))
    return start, d.now - start


def _bar_width(span: timedelta) -> float:
    """The width of a 10-minute interval's bar on an axis of ``span``."""
    return max(2.0, (WIDTH - PAD_LEFT) * (timedelta(minutes=10) / span) - 1)


def _x(at: datetime, start: datetime, window: timedelta) -> float:
    share = min(max((at - start) / window, 0.0), 1.0)
    return PAD_LEFT + share * (WIDTH - PAD_LEFT - 4)


def _h(value: float, top: float) -> float:
    return max(0.0, value / top * (HEIGHT - PAD_BOTTOM - PAD_TOP)) if top > 0 else 0.0


def _y(value: float, top: float) -> float:
    return HEIGHT - PAD_BOTTOM - _h(value, top)


def _colours(versions: Iterable[str]) -> dict[str, str]:
    ordered = dict.fromkeys(versions)
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(ordered)}


def _attrs(**values: object) -> str:
    """``data-`` attributes (underscores become dashes); None values are left out."""
    return " ".join(
        f"data-{k.replace('_', '-')}='{escape(_plain(v))}'" for k, v in values.items() if v is not None
    )


def _plain(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _num(value: object, digits: int = 4) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _iso(at: datetime) -> str:
    return at.isoformat()


def _hm(at: datetime) -> str:
    return at.strftime("%H:%M")


def _stamp(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def _span(r: IntervalRow) -> str:
    return f"{_stamp(r.interval_start)}-{_hm(r.interval_end)}"


STYLE = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:16px 24px;color:#1a1a1a;
background:#fff}
header h1{margin:0;font-size:22px}.sub{margin:2px 0 12px;color:#555}
section{margin:18px 0 26px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:10px 0 6px}
.cards{display:flex;gap:16px;flex-wrap:wrap}.card{border:1px solid #ccd;border-radius:6px;
padding:8px 14px;min-width:300px}.card .version{font-size:18px;font-weight:600;margin:0}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:6px 0}dt{color:#666}dd{margin:0}
table.grid,table.evidence{border-collapse:collapse;margin:8px 0}
.grid th,.grid td,.evidence th,.evidence td{border:1px solid #ddd;padding:3px 8px;text-align:left}
.grid th{background:#f4f5f7}.evidence th{background:#f4f5f7;font-weight:500}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.gate-passed{color:#196c2e}td.gate-failed{background:#ffd7d5;color:#8a1c13;font-weight:600}
.psi{text-align:right;font-variant-numeric:tabular-nums}.psi-ok{background:#d9f2dc}
.psi-warn{background:#ffe8a3}.psi-alert{background:#f8a5a0;font-weight:600}.psi-none{color:#999}
.empty{color:#666;font-style:italic}.error{color:#8a1c13;font-weight:600}.muted{color:#888}
.verdict.better{color:#196c2e;font-weight:600}.verdict.not-better{color:#555}
svg.chart{width:100%;max-width:900px;height:auto;display:block;background:#fbfbfc;border:1px solid #eee}
svg text{font-size:11px;fill:#555}.axis{stroke:#999}.tick{stroke:#e4e4e4}
.band{fill:#c9d8f0;opacity:.6}.estimated{fill:none;stroke:#2f5fb3;stroke-dasharray:5 3}
.realized{fill:none;stroke:#222}.threshold{stroke:#c0392b;stroke-dasharray:2 3}
.estimate.ok{fill:#2f5fb3}.estimate.alert{fill:#c0392b}
.key.est{background:#2f5fb3}.key.real{background:#222}.key.thr{background:#c0392b}
rect.loaded{fill:#4c78a8}rect.rejected{fill:#e45756}.gate-failed rect.loaded{fill:#b0413e}
rect.expected{fill:#bbbbbb}rect.actual{fill:#4c78a8}rect.coverage{fill:#54a24b}
polyline.series{fill:none;stroke-width:1.5}
.legend{color:#555;font-size:12px;margin:4px 0}.key{display:inline-block;width:10px;height:10px;
margin:0 4px 0 10px;vertical-align:middle}.key.loaded{background:#4c78a8}.key.rejected{background:#e45756}
.key.failed{background:#b0413e}.key.expected{background:#bbb}.key.actual{background:#4c78a8}
.key.psi-ok{background:#d9f2dc}.key.psi-warn{background:#ffe8a3}.key.psi-alert{background:#f8a5a0}
code{font-size:12px}
"""
