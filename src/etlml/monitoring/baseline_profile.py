"""The reference profile of ``baseline_v1``, fitted on the simulator's population.

``baseline_v1`` was not trained on stored events: its statistics are the simulator's population
parameters (migration 0002). Its reference profile is therefore fitted on a large, fixed draw of
the simulator itself (:data:`SAMPLE_EVENTS` events of seed :data:`SEED`): f1 ~ N(10, 2), f2 ~ N(0, 1)
with 5% missing, f3 ~ N(100, 10), and the score ``baseline_v1`` gives them. Migration
``0011_baseline_v1_reference_profile.sql`` stores exactly what this prints::

    python -m etlml.monitoring.baseline_profile

and a test checks that the stored profile equals :func:`baseline_profile` (a change to the simulator,
the model or the binning shows up there, and needs a new migration).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from etlml.features.profile import reference_profile
from etlml.features.stats import FeatureStats
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.models.scoring import LinearModel

SEED = 20_261_126
SAMPLE_EVENTS = 200_000
# Any interval will do: the simulator's distribution does not depend on it, only the draw does.
SAMPLE_INTERVAL = Interval(
    datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=10)
)
# baseline_v1 as migration 0002 registered it (a test compares these with the stored row)
BASELINE_COEF = {"f1": 0.3, "f2": 0.2, "f3": 0.5}
BASELINE_INTERCEPT = 0.0
BASELINE_STATS = {
    "f1": FeatureStats(10.0, 2.0),
    "f2": FeatureStats(0.0, 1.0),
    "f3": FeatureStats(100.0, 10.0),
}


def baseline_profile() -> dict[str, Any]:
    """The reference profile of ``baseline_v1`` (see the module's docstring)."""
    events = SimulatedSource(SEED, SAMPLE_EVENTS).events(SAMPLE_INTERVAL)
    model = LinearModel("baseline_v1", BASELINE_COEF, BASELINE_INTERCEPT, BASELINE_STATS)
    score = model.predict(events, use_stored_z=False)
    return reference_profile(
        {
            "f1": events["f1"].to_numpy(),
            "f2": events["f2"].to_numpy(),
            "f3": events["f3"].to_numpy(),
            "score": score,
        }
    )


def main() -> None:
    print(json.dumps(baseline_profile(), sort_keys=True))  # noqa: T201 (the command's output)


if __name__ == "__main__":
    main()
