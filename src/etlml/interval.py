"""The data interval a run is keyed by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Interval:
    """A half-open UTC time range ``[start, end)``: the data interval of one DAG run."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("interval bounds must be timezone-aware")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if not self.start < self.end:
            raise ValueError(
                f"empty data interval {self.start.isoformat()} .. {self.end.isoformat()}; "
                "schedule the DAG with a data-interval timetable (CronDataIntervalTimetable)"
            )

    def shifted(self, delta: timedelta) -> Interval:
        """The interval moved by ``delta``; computed on plain UTC datetimes, because Airflow's pendulum
        bounds lose their time zone in arithmetic."""
        start, end = (datetime.combine(b.date(), b.time(), UTC) for b in (self.start, self.end))
        return Interval(start + delta, end + delta)

    @property
    def key(self) -> str:
        """A path- and id-safe name, e.g. ``20261125T181000Z_20261125T182000Z``."""
        return f"{self.start:%Y%m%dT%H%M%S}Z_{self.end:%Y%m%dT%H%M%S}Z"


def every(start: datetime, end: datetime, minutes: int = 10) -> list[Interval]:
    """The intervals of a schedule every ``minutes`` minutes, aligned to the hour like cron's
    ``*/10``, that lie wholly in ``[start, end)``, oldest first."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    step = timedelta(minutes=minutes)
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first = hour + step * -(-(start - hour) // step)  # the first boundary at or after start
    count = max(0, (end - first) // step)
    return [Interval(first + step * k, first + step * (k + 1)) for k in range(count)]


def on_grid(moment: datetime, *, up: bool = False, minutes: int = 10) -> datetime:
    """``moment`` (UTC) on the grid of the intervals' starts: rounded down, or up with ``up``."""
    at = moment.astimezone(UTC)
    floor = at.replace(minute=at.minute - at.minute % minutes, second=0, microsecond=0)
    return floor + timedelta(minutes=minutes) if up and floor < at else floor
