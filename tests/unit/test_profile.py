import numpy as np
import pytest

from etlml.features.profile import ProfileError, check_profile, column_profile, psi, reference_profile, shares


def test_a_profile_splits_values_into_equal_shares_and_counts_missing_ones() -> None:
    values = [float(v) for v in range(100)] + [None] * 25
    profile = column_profile(values, bins=4)
    assert profile["edges"] == [24.0, 49.0, 74.0]
    assert profile["expected"] == [0.24, 0.25, 0.25, 0.26]
    assert profile["missing_share"] == pytest.approx(0.2)
    assert profile["n"] == 125


def test_a_value_on_an_edge_falls_in_the_bin_that_edge_opens_like_width_bucket() -> None:
    assert shares([1.0, 5.0, 10.0], np.array([0.0, 1.0, 5.0, 9.99, 10.0])) == [0.2, 0.2, 0.4, 0.2]


def test_tied_quantiles_merge_into_fewer_bins() -> None:
    profile = column_profile(np.array([1.0] * 90 + [2.0] * 10), bins=10)
    assert profile["edges"] == [1.0]
    assert sum(profile["expected"]) == pytest.approx(1.0)
    check_profile(dict.fromkeys(("f1", "f2", "f3", "score"), profile))


def test_psi_is_zero_for_the_same_shares_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(7)
    reference = column_profile(rng.normal(100, 10, 50_000))
    same = shares(reference["edges"], rng.normal(100, 10, 50_000))
    shifted = shares(reference["edges"], rng.normal(120, 10, 50_000))
    assert psi(reference["expected"], same) < 0.01
    assert psi(reference["expected"], shifted) > 0.25


def test_an_empty_column_or_a_malformed_profile_is_refused() -> None:
    with pytest.raises(ProfileError, match="without a single finite value"):
        column_profile([None, float("nan")])
    with pytest.raises(ProfileError, match="missing"):
        reference_profile({"f1": [1.0]})
    with pytest.raises(ProfileError, match="k \\+ 1 expected shares"):
        check_profile({key: {"edges": [1.0], "expected": [1.0]} for key in ("f1", "f2", "f3", "score")})
