"""The FastAPI app of the etlml page, which Airflow's API server mounts under ``/etlml``.

Only a signed-in Airflow user sees it: the request is authenticated by Airflow's own API security (the
JWT of the ``_token`` cookie the UI's login sets, or an ``Authorization: Bearer`` header) and
authorized as a view of the website by the configured auth manager. Without a login a browser is
sent to the login page; any other client gets 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

URL_PREFIX = "/etlml"

_bearer = HTTPBearer(auto_error=False)


async def authorized(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Airflow's ``get_user`` (401 without a token, 403 for a bad one) and its check that the user
    may view the website (403 otherwise). Imported here: only the API server needs them."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api import security

    user = await security.get_user(request, _oauth_token=None, bearer_credentials=credentials)
    security.requires_access_view(AccessView.WEBSITE)(request, user)


async def _unauthenticated(request: Request, exc: Exception) -> Response:
    """A browser without a login goes to Airflow's login page, and back here after it."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return await http_exception_handler(request, exc)


def _page() -> str:
    """Read the warehouse and render the page; a warehouse that cannot be read renders as an error."""
    from psycopg import IsolationLevel

    from etlml import settings
    from etlml.ui import render
    from etlml.warehouse import dashboard
    from etlml.warehouse.connection import connect

    with connect(settings.load().warehouse_conn_id) as conn:
        conn.read_only = True
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        return render.page(dashboard.read(conn))


def create_app() -> FastAPI:
    """The page's app: ``GET /`` is the page."""
    app = FastAPI(title="etlml", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(HTTPException, _unauthenticated)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(authorized)])
    def index() -> HTMLResponse:
        return _respond()

    return app


def _respond() -> HTMLResponse:
    import psycopg

    from etlml.errors import SettingsError
    from etlml.ui import render
    from etlml.warehouse.connection import WarehouseUnavailableError

    try:
        return HTMLResponse(_page(), headers={"Cache-Control": "no-store"})
    except (SettingsError, WarehouseUnavailableError) as exc:
        return HTMLResponse(render.error(str(exc)), status_code=503)
    except psycopg.errors.UndefinedTable as exc:
        message = (
            f"the warehouse lacks a table ({exc.diag.message_primary}): apply the migrations "
            "(run 00_init_schema, or `etlml db migrate`)"
        )
        return HTMLResponse(render.error(message), status_code=503)
