"""The quality gate and the run's accounting: where every record went, and whether too many were rejected."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from etlml.interval import Interval

log = logging.getLogger(__name__)

TOP_REASONS = 3


class QualityGateError(RuntimeError):
    """A run rejected a larger share of its records than allowed; retrying reads the same files."""


class InvariantError(RuntimeError):
    """The warehouse does not hold every record a run read: extracted != loaded + rejected + deduplicated."""


@dataclass(frozen=True)
class Audit:
    """One run's accounting, as stored in ``run_audit``."""

    source: str
    extracted: int
    loaded: int
    rejected: int  # every reason but ``duplicate``
    deduplicated: int
    max_rejected_share: float
    by_reason: dict[str, int] = field(default_factory=dict)
    extra_fields: dict[str, int] = field(default_factory=dict)
    extra_field_names: int = 0
    imputed: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.extracted == self.loaded + self.rejected + self.deduplicated

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.extracted if self.extracted else 0.0

    @property
    def passed(self) -> bool:
        return self.rejected_share <= self.max_rejected_share

    def top_reasons(self) -> str:
        top = sorted(self.by_reason.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
        return ", ".join(f"{reason} {n}" for reason, n in top) or "none"

    def as_params(self) -> dict[str, Any]:
        """The values of ``sql/upsert_run_audit.sql`` that the audit itself knows."""
        from psycopg.types.json import Jsonb

        return {
            "source": self.source,
            "extracted": self.extracted,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "deduplicated": self.deduplicated,
            "rejected_share": self.rejected_share,
            "max_rejected_share": self.max_rejected_share,
            "gate": "passed" if self.passed else "failed",
            "by_reason": Jsonb(self.by_reason),
            "extra_fields": Jsonb(self.extra_fields),
            "extra_field_names": self.extra_field_names,
            "imputed": Jsonb(self.imputed),
        }

    def as_xcom(self) -> dict[str, Any]:
        return {
            "extracted": self.extracted,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "deduplicated": self.deduplicated,
            "gate": "passed" if self.passed else "failed",
        }


def check_balanced(audit: Audit, interval: Interval) -> None:
    """Raise :class:`InvariantError` unless every record read is loaded, rejected or deduplicated."""
    if not audit.balanced:
        raise InvariantError(
            f"records of {interval.key} do not add up: extracted {audit.extracted} != loaded {audit.loaded} "
            f"+ rejected {audit.rejected} + deduplicated {audit.deduplicated}; nothing was written"
        )


def enforce(audit: Audit, interval: Interval) -> None:
    """The quality gate: raise :class:`QualityGateError` if the run rejected more than its allowed
    share of records; below that, warn about any rejected record."""
    summary = (
        f"{audit.rejected} of {audit.extracted} records of {interval.key} rejected "
        f"({audit.rejected_share:.1%}); top reasons: {audit.top_reasons()}"
    )
    if not audit.passed:
        raise QualityGateError(
            f"quality gate failed: {summary}, more than ETLML_MAX_REJECTED_SHARE="
            f"{audit.max_rejected_share:g}. They are in rejected_events (interval_start = "
            f"'{interval.start.isoformat()}'); fix or remove the bad files, then clear the run"
        )
    if audit.rejected:
        log.warning("quality gate passed with rejections: %s; see rejected_events", summary)
    if audit.deduplicated:
        log.warning(
            "%d duplicate records of %s dropped; see rejected_events", audit.deduplicated, interval.key
        )
