"""etlml: scheduled ETL and batch model scoring on Apache Airflow 3 and PostgreSQL."""

FEATURES: tuple[str, ...] = ("f1", "f2", "f3")
"""The model features, in the order every frame, table and coefficient vector uses."""


def version() -> str:
    """This package's version, as installed (what ``run_audit.etlml_version`` records)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("etlml")
    except PackageNotFoundError:
        return "unknown"
