"""The property tests run without a per-example deadline, whatever the load beside them."""

from hypothesis import settings


def test_the_suite_profile_has_no_deadline() -> None:
    assert settings.default.deadline is None
