"""The paired bootstrap behind `etlml models compare` and `promote --if-better` (pure)."""

import numpy as np
import pytest

from etlml.models import evidence


def noisy(mean: float, n: int, seed: int) -> np.ndarray:
    return mean + np.random.default_rng(seed).normal(0.0, 1.0, n)


def test_same_inputs_and_seed_give_the_same_interval() -> None:
    diff = noisy(-0.1, 300, 1)
    first = evidence.paired_bootstrap(diff, 1000, 0)
    assert evidence.paired_bootstrap(diff.copy(), 1000, 0) == first
    assert evidence.paired_bootstrap(diff, 1000, 1) != first


def test_the_interval_is_about_the_normal_one_around_the_mean() -> None:
    diff = noisy(0.3, 2000, 2)
    low, high = evidence.paired_bootstrap(diff, 2000, 0)
    half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
    assert low == pytest.approx(diff.mean() - half, abs=0.2 * half)
    assert high == pytest.approx(diff.mean() + half, abs=0.2 * half)


def test_a_clearly_better_candidate_lies_wholly_below_zero() -> None:
    y = np.zeros(400)
    champion = noisy(0.0, 400, 3) * 2  # errors of sd 2
    candidate = noisy(0.0, 400, 4) * 0.5  # errors of sd 0.5
    found = evidence.compare_errors(y, champion, candidate, samples=1000, seed=0)
    assert found.ci_high is not None and found.ci_high < 0
    assert found.candidate_better
    assert found.mae_diff == pytest.approx(np.abs(candidate).mean() - np.abs(champion).mean())


def test_an_equal_candidate_straddles_zero_and_is_not_better() -> None:
    y = np.zeros(400)
    champion, candidate = noisy(0.0, 400, 5), noisy(0.0, 400, 6)  # same error distribution
    found = evidence.compare_errors(y, champion, candidate, samples=1000, seed=0)
    assert found.ci_low is not None and found.ci_high is not None
    assert found.ci_low < 0 < found.ci_high
    assert not found.candidate_better


def test_identical_predictions_give_a_zero_interval_that_is_no_evidence() -> None:
    y, pred = noisy(0, 100, 7), noisy(0, 100, 8)
    found = evidence.compare_errors(y, pred, pred.copy())
    assert (found.mae_diff, found.ci_low, found.ci_high) == (0.0, 0.0, 0.0)
    assert not found.candidate_better


def test_metrics_of_each_version() -> None:
    found = evidence.compare_errors(
        np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 5.0]), np.array([1.0, 3.0, 3.0])
    )
    assert found.n == 3
    assert found.champion_mae == pytest.approx(1.0)
    assert found.champion_rmse == pytest.approx(np.sqrt(5 / 3))
    assert found.candidate_mae == pytest.approx(1 / 3)
    assert found.mae_diff == pytest.approx(-2 / 3)
    # too few events to claim anything: no interval, not better however large the difference
    assert (found.ci_low, found.ci_high, found.candidate_better) == (None, None, False)


def test_no_events_give_no_metrics() -> None:
    empty = np.array([])
    found = evidence.compare_errors(empty, empty, empty)
    assert found.n == 0 and found.champion_mae is None and not found.candidate_better


@pytest.mark.parametrize(
    ("y", "a", "b", "samples", "message"),
    [
        ([1.0, 2.0], [1.0], [1.0, 2.0], 10, "equal lengths"),
        ([1.0, np.nan], [1.0, 2.0], [1.0, 2.0], 10, "finite"),
        ([1.0], [1.0], [1.0], 0, "at least 1 sample"),
    ],
)
def test_bad_inputs_are_refused(
    y: list[float], a: list[float], b: list[float], samples: int, message: str
) -> None:
    with pytest.raises(evidence.EvidenceError, match=message):
        evidence.compare_errors(np.array(y), np.array(a), np.array(b), samples=samples)


def test_many_events_are_resampled_in_bounded_blocks() -> None:
    diff = noisy(-0.01, 300_000, 9)
    low, high = evidence.paired_bootstrap(diff, 40, 0)  # 12 million draws, in blocks of 2 million
    assert low < diff.mean() < high
    assert evidence.paired_bootstrap(diff, 40, 0) == (low, high)
