"""The window of intervals a training or a comparison reads (light: the command line imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from etlml.errors import ModelError


class WindowError(ModelError):
    """A window without UTC offsets, or empty."""


@dataclass(frozen=True)
class Window:
    """The intervals that start in ``[start, end)``; both ends need a UTC offset."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise WindowError(
                f"a window needs times with a UTC offset, got {self.start.isoformat()!r} and "
                f"{self.end.isoformat()!r}; e.g. 2026-11-25T00:00:00+00:00"
            )
        if not self.start < self.end:
            raise WindowError(
                f"empty window {self.start.isoformat()} .. {self.end.isoformat()}: 'from' must be before 'to'"
            )

    def params(self) -> dict[str, datetime]:
        return {"from": self.start, "to": self.end}
