"""Alerts: a drift status ``alert`` (``30_monitor``) and a missed deadline (``10_etl_ml_pipeline``).

:class:`AlertNotifier` is an Airflow notifier. It always logs the alert as a warning; when the
Airflow connection ``etlml_alerts`` exists, it also POSTs the alert there as JSON:

- an HTTP connection (``AIRFLOW_CONN_ETLML_ALERTS=https://alerts.example.com/hooks/etlml``, or type
  ``http``/``https`` with host, port and the path in ``extra.endpoint``; a login and password are
  sent as basic auth) gets ``{"source": "etlml", "kind": ..., "summary": ..., "details": {...}}``;
- a Slack incoming-webhook connection (type ``slackwebhook``, the Slack provider's form: the
  webhook's token ``T.../B.../...`` as password, host ``https://hooks.slack.com/services`` by default)
  gets Slack's ``{"text": summary}``.

A post that fails raises, so the task (or the deadline callback) fails and says why.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseNotifier

from etlml.errors import PermanentError
from etlml.settings import ALERTS_CONN_ID

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
SLACK_WEBHOOKS = "https://hooks.slack.com/services"


class AlertError(RuntimeError):
    """The alert could not be posted (the endpoint refused it or did not answer): a retry may."""


class AlertConfigError(PermanentError, AlertError):
    """The alerts connection cannot be used as configured: a retry cannot fix it."""


class AlertNotifier(BaseNotifier):
    """Log ``summary`` as a warning and, when connection ``conn_id`` exists, post it there.

    Usable as a task callback, awaited in the triggerer (a deadline's ``AsyncCallback``, whose
    context carries ``dag_run`` and ``deadline``), or called with :meth:`send` from a task.
    """

    template_fields = ("summary",)

    def __init__(
        self,
        *,
        kind: str = "deadline",
        summary: str = "",
        details: Mapping[str, Any] | None = None,
        conn_id: str = ALERTS_CONN_ID,
        context: Any = None,
    ) -> None:
        super().__init__(context=context)
        self.kind = kind
        self.summary = summary
        self.details = dict(details or {})
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        self.send(_from_context(self.details, context))

    async def async_notify(self, context: Any) -> None:
        """In the triggerer (a deadline's callback): the connection is looked up the async way."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        details = self._logged(_from_context(self.details, context))
        try:
            conn = await BaseHook.aget_connection(self.conn_id)
        except AirflowNotFoundException:
            return
        await asyncio.to_thread(self._post, conn, details)

    def send(self, details: Mapping[str, Any] | None = None) -> bool:
        """Log, then post to the connection if it exists; True when posted."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        merged = self._logged({**self.details, **(details or {})})
        try:
            conn = BaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            return False
        self._post(conn, merged)
        return True

    def _logged(self, details: dict[str, Any]) -> dict[str, Any]:
        log.warning("etlml %s alert: %s %s", self.kind, self.summary, json.dumps(details, default=str))
        return details

    def _post(self, conn: Any, details: Mapping[str, Any]) -> None:
        url, body, headers = _request(conn, self.kind, self.summary, details)
        _post(url, body, headers)
        log.info("alert posted to connection %r (%s)", self.conn_id, urlsplit(url).netloc)


_RUN_FIELDS = ("dag_id", "run_id", "logical_date", "state", "data_interval_start", "data_interval_end")


def _from_context(details: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """A deadline callback's context as alert details: the run (``dag_run``, the REST API's form the
    scheduler puts there, whose run id is ``dag_run_id``) and ``deadline.deadline_time``."""
    if not isinstance(context, Mapping):
        return dict(details)
    out = dict(details)
    run = context.get("dag_run")
    if isinstance(run, Mapping):
        run = {"run_id": run.get("dag_run_id"), **run}
        out.update({key: run[key] for key in _RUN_FIELDS if run.get(key) is not None})
    deadline = context.get("deadline")
    if isinstance(deadline, Mapping) and "deadline_time" in deadline:
        when = deadline["deadline_time"]
        out["deadline_time"] = when.isoformat() if isinstance(when, datetime) else str(when)
    return out


def _request(
    conn: Any, kind: str, summary: str, details: Mapping[str, Any]
) -> tuple[str, bytes, dict[str, str]]:
    """URL, JSON body and headers of the post to ``conn``."""
    headers = {"Content-Type": "application/json", "User-Agent": "etlml-alerts"}
    if conn.conn_type == "slackwebhook":
        token = (conn.password or "").strip("/")
        if not token:
            raise AlertConfigError(
                f"Slack connection {conn.conn_id!r} has no webhook token: put the part after "
                "https://hooks.slack.com/services/ of the incoming webhook's URL in its password"
            )
        base = (conn.host or SLACK_WEBHOOKS).rstrip("/")
        text = f"etlml {kind} alert: {summary}"
        return f"{base}/{token}", json.dumps({"text": text}).encode(), headers
    url = _http_url(conn)
    if conn.login:
        pair = f"{conn.login}:{conn.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    payload = {"source": "etlml", "kind": kind, "summary": summary, "details": details}
    return url, json.dumps(payload, default=str).encode(), headers


def _http_url(conn: Any) -> str:
    host = conn.host or ""
    if host.startswith(("http://", "https://")):
        base = host.rstrip("/")
    else:
        if not host:
            raise AlertConfigError(
                f"connection {conn.conn_id!r} has no host: set AIRFLOW_CONN_{conn.conn_id.upper()}="
                "https://HOST/PATH (the webhook's URL)"
            )
        scheme = "https" if conn.conn_type == "https" else "http"
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    extra = conn.extra_dejson if isinstance(conn.extra_dejson, Mapping) else {}
    # AIRFLOW_CONN_X=http://host/hooks/etlml stores the path as the connection's schema
    path = str(extra.get("endpoint") or conn.schema or "").lstrip("/")
    return f"{base}/{path}" if path else base


def _post(url: str, body: bytes, headers: Mapping[str, str]) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise AlertConfigError(f"alerts are posted over http(s) only, not to {url!r}")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 (scheme checked)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = response.status
    except OSError as exc:
        raise AlertError(f"posting the alert to {urlsplit(url).netloc} failed: {exc}") from exc
    if not 200 <= status < 300:
        raise AlertError(f"posting the alert to {urlsplit(url).netloc} got HTTP status {status}")
