"""The one distinction between errors that the DAGs act on: whether a retry can help.

A :class:`PermanentError` (bad configuration, unapplied migrations, an unusable model, records that
failed the quality gate) fails a task at once, without retries: a retry would meet it again. Every
other error (an unreachable server, a file still being written) is retried with backoff.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot fix it: the task fails at once, with this message saying what to do."""


class ModelError(PermanentError, ValueError):
    """A model version is unknown or its stored record (parameters, statistics, artifact) is not usable."""


class SettingsError(PermanentError, ValueError):
    """A setting (an environment variable, a DAG param) has a value etlml cannot use."""
