"""The Airflow plugin that adds the etlml page to the UI, registered through the ``airflow.plugins``
entry point (pyproject.toml), so every installation of the package has it: the page's app under
``/etlml`` on the API server, and an "etlml" entry in the navigation that shows it inside the UI."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from etlml.ui.app import URL_PREFIX, create_app


class EtlmlPlugin(AirflowPlugin):
    """The etlml page: data intervals, drift, realized accuracy and the model registry."""

    name = "etlml"
    # class attributes are how Airflow reads a plugin (AirflowPlugin declares them so)
    fastapi_apps = [  # noqa: RUF012
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "etlml page"}
    ]
    # href is relative: the UI resolves it against its base URL (<base href>), so a deployment under a
    # path prefix works too; url_route shows it inside the UI at /plugin/etlml
    external_views = [  # noqa: RUF012
        {
            "name": "etlml",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "etlml",
            "nav_top_level": True,
        }
    ]
