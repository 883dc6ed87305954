"""The etlml page of the Airflow UI: an Airflow plugin serving a FastAPI app that reads the warehouse."""
