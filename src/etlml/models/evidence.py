"""Evidence that one model version predicts better than another on the same labelled events (pure).

Both versions' absolute errors on the same events are paired; the candidate is better when the 95%
paired-bootstrap percentile interval of the MAE difference (candidate - champion) lies wholly below
zero. The resampling is seeded, so the same errors, samples and seed always give the same interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from etlml.errors import ModelError

if TYPE_CHECKING:  # numpy is imported where it computes: the command line reads the bounds below alone
    import numpy as np

    Floats = np.ndarray[Any, np.dtype[np.float64]]

DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 0
MIN_PAIRED = 30
"""Fewer paired labelled events than this give no interval: a bootstrap of a handful of events
claims a certainty it does not have, so such a comparison never counts as evidence."""
MIN_SAMPLES = 1000
"""Fewer resamples than this are no evidence: the percentiles of a few resampled means are noise
(the "95% interval" of one resample is a point). ``promote --if-better`` refuses them."""
MAX_SAMPLES = 1_000_000
"""More resamples than this are refused: they cost minutes and change nothing the percentiles show."""
MAX_SEED = 2**63 - 1
"""Seeds are stored as bigint (``model_comparisons.seed``); NumPy takes non-negative ones."""
_DRAWS_PER_BLOCK = 2_000_000
"""Resampled indices drawn at once; bounds memory whatever the number of events."""


class EvidenceError(ModelError):
    """Errors that cannot be compared (different lengths, non-finite values, bad samples)."""


class InsufficientEvidenceError(EvidenceError):
    """Too few resamples or paired labelled events to decide on (``promote --if-better``)."""


@dataclass(frozen=True)
class Evidence:
    """Champion and candidate on ``n`` paired labelled events; ``ci_low``/``ci_high`` are ``None``
    below :data:`MIN_PAIRED` events, the metrics ``None`` when ``n`` is 0."""

    n: int
    champion_mae: float | None
    candidate_mae: float | None
    champion_rmse: float | None
    candidate_rmse: float | None
    mae_diff: float | None
    ci_low: float | None
    ci_high: float | None
    samples: int
    seed: int

    @property
    def candidate_better(self) -> bool:
        """True only when the whole 95% interval of the MAE difference, from at least
        :data:`MIN_SAMPLES` resamples, is below zero."""
        return self.ci_high is not None and self.ci_high < 0 and self.samples >= MIN_SAMPLES

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "candidate_better": self.candidate_better}


def paired_bootstrap(diff: Floats, samples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval of the mean of ``diff`` over ``samples`` resamples (with
    replacement, of ``len(diff)`` values each) drawn from ``numpy.random.default_rng(seed)``."""
    import numpy as np

    n = len(diff)
    if n == 0:
        raise EvidenceError("a bootstrap needs at least one paired difference")
    if samples < 1:
        raise EvidenceError(f"the bootstrap needs at least 1 sample, got {samples}")
    rng = np.random.default_rng(seed)
    block = max(1, _DRAWS_PER_BLOCK // n)  # depends on n only, so the stream of draws is reproducible
    means = np.empty(samples, dtype=np.float64)
    for start in range(0, samples, block):
        stop = min(samples, start + block)
        means[start:stop] = diff[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def compare_errors(
    y_true: Floats,
    champion: Floats,
    candidate: Floats,
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
) -> Evidence:
    """MAE and RMSE of both versions on the same events, and the paired-bootstrap interval of the MAE
    difference (candidate - champion)."""
    import numpy as np

    y, a, b = (np.asarray(v, dtype=np.float64) for v in (y_true, champion, candidate))
    if not len(y) == len(a) == len(b):
        raise EvidenceError(f"paired errors need equal lengths, got {len(y)}, {len(a)} and {len(b)}")
    if not (np.isfinite(y).all() and np.isfinite(a).all() and np.isfinite(b).all()):
        raise EvidenceError("labels and predictions must be finite to be compared")
    if samples < 1:
        raise EvidenceError(f"the bootstrap needs at least 1 sample, got {samples}")
    n = len(y)
    if n == 0:
        return Evidence(0, None, None, None, None, None, None, None, samples, seed)
    with np.errstate(over="ignore", invalid="ignore"):
        err_a, err_b = a - y, b - y
        diff = np.abs(err_b) - np.abs(err_a)
        low, high = paired_bootstrap(diff, samples, seed) if n >= MIN_PAIRED else (None, None)
        return Evidence(
            n=n,
            champion_mae=finite(np.abs(err_a).mean()),
            candidate_mae=finite(np.abs(err_b).mean()),
            champion_rmse=rmse(err_a),
            candidate_rmse=rmse(err_b),
            mae_diff=finite(diff.mean()),
            ci_low=None if low is None else finite(low),
            ci_high=None if high is None else finite(high),
            samples=samples,
            seed=seed,
        )


def finite(value: float | np.floating[Any]) -> float | None:
    """``value`` as a float, or ``None`` when it is not finite (a sum that overflowed): nothing
    stored or printed is ever ``Infinity`` or ``NaN``."""
    import numpy as np

    number = float(value)
    return number if np.isfinite(number) else None


def rmse(errors: Floats) -> float | None:
    """The root mean square of ``errors``, scaled by the largest so that no square overflows (errors
    of 5e298 have an RMSE float8 holds); ``None`` when even that is not finite."""
    import numpy as np

    if not len(errors):
        return None
    scale = float(np.max(np.abs(errors)))
    if scale == 0.0 or not np.isfinite(scale):
        return 0.0 if scale == 0.0 else None
    return finite(scale * np.sqrt(np.mean((errors / scale) ** 2)))
