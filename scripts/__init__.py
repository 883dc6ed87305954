"""Developer tooling, never shipped in the image: the demo, the local Airflow stack it shares with the
end-to-end tests and the benchmark, the services check and the Compose ``.env`` generator."""
