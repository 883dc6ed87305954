"""The warehouse: connections, the migrations and their runner, binary COPY, and the writes of a run."""
