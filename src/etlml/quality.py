"""The run's accounting and the quality gate: where every record went, and whether too many were rejected.

Pure: the accounting is the data contract's :class:`~etlml.ingest.contract.Counts`, with the events,
rejected records and duplicates as the warehouse holds them after the load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from etlml.errors import PermanentError
from etlml.ingest.contract import Counts
from etlml.interval import Interval

log = logging.getLogger(__name__)

TOP_REASONS = 3


class QualityGateError(PermanentError, RuntimeError):
    """A run rejected a larger share of its records than allowed; retrying reads the same files."""


class InvariantError(PermanentError, RuntimeError):
    """The warehouse does not hold every record a run read: extracted != loaded + rejected + deduplicated."""


@dataclass(frozen=True)
class Audit:
    """One run's accounting, as stored in ``run_audit``: ``counts.accepted`` is the events loaded."""

    source: str
    counts: Counts
    max_rejected_share: float

    @classmethod
    def of(
        cls, source: str, extracted: Counts, stored: tuple[int, int, int], max_rejected_share: float
    ) -> Audit:
        """The counts of what extract read, with ``stored`` (loaded, rejected, deduplicated) as the
        warehouse now holds them."""
        loaded, rejected, deduplicated = stored
        counts = replace(extracted, accepted=loaded, rejected=rejected, deduplicated=deduplicated)
        return cls(source, counts, max_rejected_share)

    @property
    def passed(self) -> bool:
        return self.counts.rejected_share <= self.max_rejected_share

    @property
    def gate(self) -> str:
        return "passed" if self.passed else "failed"

    def top_reasons(self) -> str:
        top = sorted(self.counts.by_reason.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
        return ", ".join(f"{reason} {n}" for reason, n in top) or "none"

    def to_xcom(self) -> dict[str, Any]:
        return {
            "extracted": self.counts.extracted,
            "loaded": self.counts.accepted,
            "rejected": self.counts.rejected,
            "deduplicated": self.counts.deduplicated,
            "gate": self.gate,
        }


def check_balanced(audit: Audit, interval: Interval) -> None:
    """Raise :class:`InvariantError` unless every record read is loaded, rejected or deduplicated."""
    counts = audit.counts
    if not counts.balanced:
        raise InvariantError(
            f"records of {interval.key} do not add up: extracted {counts.extracted} != loaded "
            f"{counts.accepted} + rejected {counts.rejected} + deduplicated {counts.deduplicated}; "
            "nothing was written"
        )


def enforce(audit: Audit, interval: Interval) -> None:
    """The quality gate: raise :class:`QualityGateError` if the run rejected more than its allowed
    share of records; below that, warn about any rejected record."""
    counts = audit.counts
    summary = (
        f"{counts.rejected} of {counts.extracted} records of {interval.key} rejected "
        f"({counts.rejected_share:.1%}); top reasons: {audit.top_reasons()}"
    )
    if not audit.passed:
        raise QualityGateError(
            f"quality gate failed: {summary}, more than ETLML_MAX_REJECTED_SHARE="
            f"{audit.max_rejected_share:g}. They are in rejected_events (interval_start = "
            f"'{interval.start.isoformat()}'); fix or remove the bad files, then clear the run"
        )
    if counts.rejected:
        log.warning("quality gate passed with rejections: %s; see rejected_events", summary)
    if counts.deduplicated:
        log.warning(
            "%d duplicate records of %s dropped; see rejected_events", counts.deduplicated, interval.key
        )
