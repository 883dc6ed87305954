"""Compare the champion with a candidate on the same labelled events, store it, and promote on evidence.

Every comparison is stored in ``model_comparisons``; a promotion stores the evidence it acted on (and
that row's id) in its ``model_events`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from etlml.models import evidence, registry
from etlml.models.window import Window
from etlml.warehouse.connection import query


@dataclass(frozen=True)
class Comparison:
    """A stored comparison (``comparison_id`` is ``None`` when nothing was paired, so nothing stored)."""

    champion: str
    candidate: str
    window: Window
    evidence: evidence.Evidence
    comparison_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "comparison_id": self.comparison_id,
            "champion": self.champion,
            "candidate": self.candidate,
            "window_from": self.window.start.isoformat(),
            "window_to": self.window.end.isoformat(),
            **self.evidence.to_json(),
        }


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did: whether ``candidate`` became champion, why, and on which evidence."""

    promoted: bool
    candidate: str
    champion: str | None
    reason: str
    comparison: Comparison

    def to_json(self) -> dict[str, Any]:
        compared = self.comparison.to_json()
        del compared["candidate"]  # once promoted, it is the champion: named once, as "version"
        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "version": self.candidate,
            "champion": self.champion,
            "previous_champion": compared.pop("champion"),
            **compared,
        }


def _versions(conn: psycopg.Connection[Any], candidate: str | None) -> tuple[str, str]:
    current = registry.aliases(conn)
    champion = current.get("champion")
    if champion is None:
        raise registry.RegistryError("no champion is set; run `etlml db migrate` (it seeds baseline_v1)")
    if candidate is None:
        candidate = current.get("challenger")
        if candidate is None:
            raise registry.RegistryError(
                "no challenger is shadowing: name the version to compare (etlml models compare VERSION), "
                "or shadow one first (etlml models shadow VERSION)"
            )
    registry.read_spec(conn, candidate)  # an unknown version says so
    if candidate == champion:
        raise registry.RegistryError(f"{candidate!r} is already the champion; name another version")
    return champion, candidate


def _evidence(
    conn: psycopg.Connection[Any], champion: str, candidate: str, window: Window, *, samples: int, seed: int
) -> evidence.Evidence:
    params = {**window.params(), "champion": champion, "candidate": candidate}
    rows = conn.execute(query("paired_errors"), params).fetchall()
    columns = np.array([row[1:] for row in rows], dtype=np.float64).reshape(-1, 3)
    return evidence.compare_errors(columns[:, 0], columns[:, 1], columns[:, 2], samples=samples, seed=seed)


def _store(conn: psycopg.Connection[Any], comparison: Comparison, actor: str) -> Comparison:
    row = conn.execute(
        query("insert_model_comparison"),
        {
            "champion": comparison.champion,
            "candidate": comparison.candidate,
            "window_from": comparison.window.start,
            "window_to": comparison.window.end,
            "actor": actor,
            **{k: v for k, v in comparison.evidence.to_json().items() if k != "candidate_better"},
        },
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING
    return Comparison(
        comparison.champion, comparison.candidate, comparison.window, comparison.evidence, int(row[0])
    )


def _no_pairs(conn: psycopg.Connection[Any], champion: str, candidate: str, window: Window) -> str:
    """Why no labelled event of the window has both versions' predictions, and what to do."""
    params = {**window.params(), "champion": champion, "candidate": candidate}
    row = conn.execute(query("comparison_coverage"), params).fetchone()
    assert row is not None  # an aggregate
    labelled, by_champion, by_candidate = (int(v) for v in row)
    span = f"the intervals that start in [{window.start.isoformat()}, {window.end.isoformat()})"
    if labelled == 0:
        return (
            f"no labelled events in {span}: wait for labels (table labels, DAG 15_ingest_labels) or choose "
            "another window with --from/--to"
        )
    missing = candidate if by_candidate == 0 else champion if by_champion == 0 else None
    if missing is not None and missing == registry.aliases(conn).get("challenger"):
        return (
            f"{missing!r} is already shadowing, but none of the {labelled} labelled events of {span} is "
            "one it scored: labels come some intervals after their events (the simulator's "
            "ETLML_SIMULATOR_LABEL_DELAY, 3 by default), so compare again once the intervals it scored "
            f"have their labels, or score that window with DAG 20_rescore (params model_version={missing}, "
            "from, to)"
        )
    if missing is not None:
        return (
            f"{missing!r} has no stored predictions for the {labelled} labelled events of {span}: shadow it "
            f"for a few intervals (etlml models shadow {missing}), or score that window with DAG "
            f"20_rescore (params model_version={missing}, from, to)"
        )
    return (
        f"none of the {labelled} labelled events of {span} was predicted by both {champion!r} and "
        f"{candidate!r}; rescore the window with DAG 20_rescore for the one that lacks them"
    )


def compare(
    conn: psycopg.Connection[Any],
    candidate: str | None,
    window: Window,
    *,
    actor: str,
    samples: int = evidence.DEFAULT_SAMPLES,
    seed: int = evidence.DEFAULT_SEED,
) -> Comparison:
    """Compare the champion with ``candidate`` (default: the challenger) on the labelled events of the
    window that both predicted, and store the comparison. No such event is an error saying what to do."""
    with conn.transaction():
        champion, candidate = _versions(conn, candidate)
        found = _evidence(conn, champion, candidate, window, samples=samples, seed=seed)
        if found.n == 0:
            raise registry.RegistryError(_no_pairs(conn, champion, candidate, window))
        return _store(conn, Comparison(champion, candidate, window, found), actor)


def promote(
    conn: psycopg.Connection[Any],
    version: str,
    window: Window,
    *,
    actor: str,
    if_better: bool,
    samples: int = evidence.DEFAULT_SAMPLES,
    seed: int = evidence.DEFAULT_SEED,
) -> Promotion:
    """Promote ``version`` with the evidence of a comparison with the champion stored beside it.

    With ``if_better`` only when the 95% interval of the MAE difference lies wholly below zero, and
    only on enough evidence: fewer than :data:`evidence.MIN_SAMPLES` resamples or
    :data:`evidence.MIN_PAIRED` paired labelled events are refused
    (:class:`evidence.InsufficientEvidenceError`, nothing stored). Without it, whatever the evidence
    says (and with none when no labelled event is paired). The comparison, the decision and the
    promotion happen under the registry lock, in one transaction.
    """
    if if_better:
        _require_samples(samples)
    with conn.transaction():
        conn.execute(query("lock_model_aliases"))
        champion, _ = _versions(conn, version)
        found = _evidence(conn, champion, version, window, samples=samples, seed=seed)
        if if_better:
            _require_pairs(found, champion, version)
        comparison = Comparison(champion, version, window, found)
        if found.n == 0:
            reason = "no labelled events: " + _no_pairs(conn, champion, version, window)
        else:
            comparison = _store(conn, comparison, actor)
            reason = _verdict(found)
        if if_better and not found.candidate_better:
            return Promotion(False, version, champion, f"not promoted: {reason}", comparison)
        details = {
            "rule": "if_better" if if_better else "unconditional",
            "comparison_id": comparison.comparison_id,
            "evidence": comparison.to_json() if found.n else None,
            "min_samples": evidence.MIN_SAMPLES,
            "min_paired": evidence.MIN_PAIRED,
            "reason": reason,
        }
        registry.promote(conn, version, actor, details=details, expected_champion=champion)
    return Promotion(True, version, version, f"promoted: {reason}", comparison)


def _require_samples(samples: int) -> None:
    if samples < evidence.MIN_SAMPLES:
        raise evidence.InsufficientEvidenceError(
            f"--if-better needs at least {evidence.MIN_SAMPLES} bootstrap resamples, got --samples "
            f"{samples}: the percentiles of fewer are noise; nothing was compared or promoted"
        )


def _require_pairs(found: evidence.Evidence, champion: str, candidate: str) -> None:
    if found.n < evidence.MIN_PAIRED:
        raise evidence.InsufficientEvidenceError(
            f"--if-better needs at least {evidence.MIN_PAIRED} paired labelled events (labelled, and "
            f"predicted by both {champion!r} and {candidate!r}), the window has {found.n} paired "
            "labelled events: widen --from/--to or wait for labels; nothing was promoted"
        )


def _verdict(found: evidence.Evidence) -> str:
    if found.ci_low is None or found.ci_high is None:
        return (
            f"only {found.n} paired labelled events, fewer than {evidence.MIN_PAIRED}: no interval, no "
            "evidence that the candidate is better"
        )
    interval = f"[{found.ci_low:.6g}, {found.ci_high:.6g}]"
    if found.samples < evidence.MIN_SAMPLES:
        return (
            f"the interval of the MAE difference {interval} comes from {found.samples} resamples, fewer "
            f"than {evidence.MIN_SAMPLES}: no evidence"
        )
    if found.candidate_better:
        return f"the 95% interval of the MAE difference {interval} lies wholly below zero"
    return f"the 95% interval of the MAE difference {interval} does not lie wholly below zero"
