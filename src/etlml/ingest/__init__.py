"""Ingestion: event sources (the simulator, landing files), the data contract, and sharding by event id."""
