"""etlml: scheduled ETL and batch model scoring on Apache Airflow 3 and PostgreSQL."""

FEATURES: tuple[str, ...] = ("f1", "f2", "f3")
"""The model features, in the order every frame, table and coefficient vector uses."""
