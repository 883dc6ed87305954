"""The model registry: register immutable versions, move the champion/challenger aliases, audit it all.

Every change runs in one transaction that takes the registry lock, changes ``model_versions`` or
``model_aliases`` and appends to ``model_events``; the CLI and the tests call these same functions.
Call them on a connection with no transaction open, so that each change commits on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from etlml import FEATURES
from etlml.errors import ModelError, PermanentError
from etlml.features.profile import ProfileError, check_profile
from etlml.features.stats import FeatureStats, Stats, stats_json
from etlml.models import artifacts, spec
from etlml.warehouse.connection import query


class RegistryError(PermanentError, ValueError):
    """A registry change that cannot be made as asked (unknown version, nothing to roll back, ...)."""


def parse_coefficients(text: str) -> dict[str, float]:
    """``"f1=0.3,f2=0.2,f3=0.5"`` -> ``{"f1": 0.3, ...}``; every feature once, finite numbers only."""
    coef: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in FEATURES:
            raise RegistryError(
                f"coefficient {part!r} is not FEATURE=NUMBER with FEATURE one of {list(FEATURES)}"
            )
        if name in coef:
            raise RegistryError(f"coefficient {name} is given twice")
        try:
            number = float(value)
        except ValueError as exc:
            raise RegistryError(f"coefficient {name}={value!r} is not a number") from exc
        if not math.isfinite(number):
            raise RegistryError(f"coefficient {name}={value!r} is not finite")
        coef[name] = number
    missing = [f for f in FEATURES if f not in coef]
    if missing:
        raise RegistryError(f"coefficients for {missing} are missing; give all of {list(FEATURES)}")
    return coef


def fit_stats(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> dict[str, FeatureStats]:
    """Mean and sample std of each raw feature over ``processed_data`` events in ``[start, end)``."""
    row = conn.execute(query("fit_feature_stats"), {"from": start, "to": end}).fetchone()
    assert row is not None  # an aggregate always returns one row
    count, *moments = row
    if int(count) < 2:
        raise RegistryError(
            f"only {count} events in [{start.isoformat()}, {end.isoformat()}): too few to fit"
        )
    stats = {}
    for i, feature in enumerate(FEATURES):
        mean, std = moments[2 * i], moments[2 * i + 1]
        if mean is None or std is None or not float(std) > 0:
            raise RegistryError(f"{feature} has no spread in that window; choose a wider one")
        stats[feature] = FeatureStats(float(mean), float(std))
    return stats


def _event(
    cur: psycopg.Cursor[Any],
    event: str,
    *,
    version: str | None,
    previous: str | None,
    actor: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    cur.execute(
        query("insert_model_event"),
        {
            "event": event,
            "model_version": version,
            "previous_version": previous,
            "actor": actor,
            "details": Jsonb(dict(details or {})),
        },
    )


@dataclass(frozen=True)
class Evidence:
    """What a version was fitted on, registered with it (all optional): its ``reference_profile``
    (the form of :mod:`etlml.features.profile`, what monitoring measures drift against), the window
    ``training_from``/``training_to`` of the labelled events it was trained on, and its
    ``validation_metrics``."""

    reference_profile: Mapping[str, Any] | None = None
    training_from: datetime | None = None
    training_to: datetime | None = None
    validation_metrics: Mapping[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        """The ``model_versions`` columns, checked: a profile monitoring can use, a whole window."""
        if self.reference_profile is not None:
            try:
                check_profile(self.reference_profile)
            except ProfileError as exc:
                raise RegistryError(f"reference profile refused: {exc}") from None
        if (self.training_from is None) != (self.training_to is None) or (
            self.training_from is not None
            and self.training_to is not None
            and not self.training_from < self.training_to
        ):
            raise RegistryError(
                f"a training window needs both ends, the start before the end; got "
                f"{self.training_from} .. {self.training_to}"
            )
        return {
            "reference_profile": _jsonb(self.reference_profile),
            "training_from": self.training_from,
            "training_to": self.training_to,
            "validation_metrics": _jsonb(self.validation_metrics),
        }


def _jsonb(value: Mapping[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(dict(value))


def _insert_version(
    cur: psycopg.Cursor[Any], actor: str, evidence: Evidence | None = None, **row: Any
) -> None:
    cur.execute(query("insert_model_version"), {**row, **(evidence or Evidence()).row()})
    if cur.rowcount == 0:
        raise RegistryError(
            f"model version {row['model_version']!r} is already registered; versions are immutable, "
            "register the change under a new version name"
        )
    _event(
        cur,
        "register",
        version=row["model_version"],
        previous=None,
        actor=actor,
        details={"kind": row["kind"]},
    )


def _valid_name(version: str) -> str:
    try:
        return spec.check_version_name(version)
    except ModelError as exc:
        raise RegistryError(str(exc)) from None


def check_new_name(conn: psycopg.Connection[Any], version: str) -> None:
    """Refuse an invalid name, or one already registered, before any work is done for it."""
    _valid_name(version)
    if conn.execute(query("model_version"), {"model_version": version}).fetchone() is not None:
        raise RegistryError(
            f"model version {version!r} is already registered; versions are immutable, choose a new name"
        )


def register_linear(
    conn: psycopg.Connection[Any],
    version: str,
    *,
    coef: Mapping[str, float],
    stats: Stats,
    actor: str,
    intercept: float = 0.0,
    description: str = "",
    reference_profile: Mapping[str, Any] | None = None,
    training_from: datetime | None = None,
    training_to: datetime | None = None,
    validation_metrics: Mapping[str, Any] | None = None,
) -> None:
    """Register a linear version (validated exactly as the pipeline will load it), with what it was
    fitted on when given (see :class:`Evidence`)."""
    _valid_name(version)
    params = {"coef": {f: coef[f] for f in FEATURES}, "intercept": intercept}
    spec.parse(version, "linear", params, stats_json(stats))
    evidence = Evidence(reference_profile, training_from, training_to, validation_metrics)
    evidence.row()  # refused before anything is locked or written
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("lock_model_aliases"))
        _insert_version(
            cur,
            actor,
            evidence,
            model_version=version,
            kind="linear",
            params=Jsonb(params),
            feature_stats=Jsonb(stats_json(stats)),
            artifact_uri=None,
            artifact_sha256=None,
            description=description,
        )


def register_sklearn(
    conn: psycopg.Connection[Any],
    version: str,
    *,
    artifact_path: str,
    stats: Stats,
    storage_root: str,
    actor: str,
    description: str = "",
    params: Mapping[str, Any] | None = None,
    reference_profile: Mapping[str, Any] | None = None,
    training_from: datetime | None = None,
    training_to: datetime | None = None,
    validation_metrics: Mapping[str, Any] | None = None,
) -> None:
    """Register a skops-saved estimator: checked, copied under the storage root, sha256 recorded,
    with what it was fitted on when given (see :class:`Evidence`).

    The name and the evidence are checked before anything is read or written: the name becomes a
    folder of the artifact store. ``params`` adds to the stored ``{"features": [...]}``.
    """
    _valid_name(version)
    evidence = Evidence(reference_profile, training_from, training_to, validation_metrics)
    evidence.row()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("lock_model_aliases"))
        # checked before the file is written: a stored artifact is never overwritten
        if cur.execute(query("model_version"), {"model_version": version}).fetchone() is not None:
            raise RegistryError(f"model version {version!r} is already registered; versions are immutable")
        uri, sha256 = artifacts.store(artifact_path, storage_root, version)
        _insert_version(
            cur,
            actor,
            evidence,
            model_version=version,
            kind="sklearn",
            params=Jsonb({**(params or {}), "features": list(FEATURES)}),
            feature_stats=Jsonb(stats_json(stats)),
            artifact_uri=uri,
            artifact_sha256=sha256,
            description=description,
        )


def aliases(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Alias -> version, read once: ``champion`` always, ``challenger`` when one is shadowing."""
    with conn.cursor() as cur:
        cur.execute(query("model_aliases"))
        return {str(alias): str(version) for alias, version in cur.fetchall()}


def read_spec(conn: psycopg.Connection[Any], version: str) -> spec.VersionSpec:
    """One version's ``model_versions`` row, checked (see :func:`etlml.models.spec.parse`)."""
    with conn.cursor() as cur:
        cur.execute(query("model_version"), {"model_version": version})
        row = cur.fetchone()
    if row is None:
        raise ModelError(
            f"model version {version!r} is not registered in model_versions (see `etlml models list`)"
        )
    kind, params, feature_stats, artifact_uri, artifact_sha256 = row
    return spec.parse(
        version,
        str(kind),
        params,
        feature_stats,
        artifact_uri=artifact_uri,
        artifact_sha256=artifact_sha256,
    )


def verify(conn: psycopg.Connection[Any], version: str) -> spec.VersionSpec:
    """Refuse unknown versions, and versions that do not load (a tampered artifact, say)."""
    checked = read_spec(conn, version)
    if checked.kind == "sklearn":
        artifacts.load_estimator(str(checked.artifact_uri), str(checked.artifact_sha256))
    return checked


def promote(
    conn: psycopg.Connection[Any],
    version: str,
    actor: str,
    *,
    details: Mapping[str, Any] | None = None,
    expected_champion: str | None = None,
) -> str | None:
    """Make ``version`` the champion; returns the previous champion. A promoted challenger stops shadowing.

    ``details`` (the evidence it acted on) go into the ``promote`` event; with ``expected_champion``
    the promotion is refused if another version has become champion since that evidence was gathered.
    """
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("lock_model_aliases"))
        verify(conn, version)
        current = aliases(conn)
        previous = current.get("champion")
        if previous == version:
            raise RegistryError(f"{version!r} is already the champion")
        if expected_champion is not None and previous != expected_champion:
            raise RegistryError(
                f"the champion is now {previous!r}, not {expected_champion!r} as when the evidence was "
                "gathered; compare again"
            )
        cur.execute(query("set_model_alias"), {"alias": "champion", "model_version": version})
        _event(cur, "promote", version=version, previous=previous, actor=actor, details=details)
        _stop_shadowing_champion(cur, current, version, actor, "promoted")
    return previous


def _stop_shadowing_champion(
    cur: psycopg.Cursor[Any], current: Mapping[str, str], champion: str, actor: str, reason: str
) -> None:
    """A version that becomes champion stops being the challenger: the two are never the same."""
    if current.get("challenger") == champion:
        cur.execute(query("clear_model_alias"), {"alias": "challenger"})
        _event(cur, "unshadow", version=None, previous=champion, actor=actor, details={"reason": reason})


def shadow(conn: psycopg.Connection[Any], version: str | None, actor: str) -> str | None:
    """Set (or with ``None`` clear) the challenger, scored beside the champion; returns the previous one."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("lock_model_aliases"))
        if version is not None:
            verify(conn, version)
        current = aliases(conn)
        previous = current.get("challenger")
        if version is None:
            if previous is None:
                raise RegistryError("no challenger is set")
            cur.execute(query("clear_model_alias"), {"alias": "challenger"})
            _event(cur, "unshadow", version=None, previous=previous, actor=actor)
            return previous
        if current.get("champion") == version:
            raise RegistryError(f"{version!r} is the champion; a challenger must be another version")
        cur.execute(query("set_model_alias"), {"alias": "challenger", "model_version": version})
        _event(cur, "shadow", version=version, previous=previous, actor=actor)
    return previous


def champion_history(conn: psycopg.Connection[Any]) -> list[str]:
    """Champions still on the stack, oldest first: each promote pushes, each rollback pops."""
    stack: list[str] = []
    for event, version in conn.execute(query("champion_events")).fetchall():
        if event == "promote":
            stack.append(str(version))
        elif stack:
            stack.pop()
    return stack


def rollback(conn: psycopg.Connection[Any], actor: str) -> tuple[str, str]:
    """The previous champion returns; returns ``(demoted, restored)``."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("lock_model_aliases"))
        history = champion_history(conn)
        if len(history) < 2:
            raise RegistryError("there is no previous champion to roll back to")
        demoted, restored = history[-1], history[-2]
        verify(conn, restored)
        current = aliases(conn)
        cur.execute(query("set_model_alias"), {"alias": "champion", "model_version": restored})
        _event(cur, "rollback", version=restored, previous=demoted, actor=actor)
        _stop_shadowing_champion(cur, current, restored, actor, "rolled back to")
    return demoted, restored


def list_versions(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute(query("list_model_versions")).fetchall()
    keys = ("model_version", "kind", "created_at", "description", "aliases")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def show(conn: psycopg.Connection[Any], version: str) -> dict[str, Any]:
    row = conn.execute(query("show_model_version"), {"model_version": version}).fetchone()
    if row is None:
        raise RegistryError(f"model version {version!r} is not registered (see `etlml models list`)")
    keys = (
        "model_version",
        "kind",
        "params",
        "feature_stats",
        "artifact_uri",
        "artifact_sha256",
        "description",
        "created_at",
        "aliases",
        "training_from",
        "training_to",
        "validation_metrics",
    )
    return dict(zip(keys, row, strict=True))


def events(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute(query("model_events")).fetchall()
    keys = ("event_id", "event", "model_version", "previous_version", "actor", "at", "details")
    return [dict(zip(keys, row, strict=True)) for row in rows]
