"""etlml: scheduled ETL and batch model scoring on Apache Airflow 3 and PostgreSQL."""

FEATURES: tuple[str, ...] = ("f1", "f2", "f3")
"""The model features, in the order every frame, table and coefficient vector uses."""

DEFAULT_MAX_ABS_VALUE = 1e15
"""The largest magnitude of a feature or a label the contracts accept (``ETLML_MAX_ABS_VALUE``):
far beyond real measurements, and far enough below float8's range (about 1.8e308) that no error,
square or sum the monitor computes from such values can overflow."""


def version() -> str:
    """This package's version, as installed (what ``run_audit.etlml_version`` records)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("etlml")
    except PackageNotFoundError:
        return "unknown"
