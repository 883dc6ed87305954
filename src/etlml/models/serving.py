"""What a run scores with: the champion (and a shadowing challenger), resolved once per run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from etlml.errors import ModelError
from etlml.models import registry

Role = Literal["champion", "challenger"]


@dataclass(frozen=True)
class Serving:
    """The versions a run scores with, read once from the aliases: a promotion during the run cannot
    mix versions."""

    champion: str
    challenger: str | None = None

    @property
    def roles(self) -> tuple[tuple[Role, str], ...]:
        """``(role, version)`` of every version scored, the champion first."""
        challenger: tuple[tuple[Role, str], ...] = (
            (("challenger", self.challenger),) if self.challenger else ()
        )
        return (("champion", self.champion), *challenger)

    def to_xcom(self) -> dict[str, Any]:
        return {"model_version": self.champion, "challenger": self.challenger}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> Serving:
        challenger = data.get("challenger")
        return cls(champion=str(data["model_version"]), challenger=str(challenger) if challenger else None)


def resolve(conn: psycopg.Connection[Any]) -> Serving:
    """Read the aliases once; a champion must be set."""
    current = registry.aliases(conn)
    if "champion" not in current:
        raise ModelError("no model version holds the 'champion' alias; run `etlml db migrate` first")
    return Serving(champion=current["champion"], challenger=current.get("challenger"))
