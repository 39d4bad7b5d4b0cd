"""
The provider's Airflow plugin: the "Models" page in the Airflow UI (Airflow 3.1+), a FastAPI
app inside the api-server under ``/predone-models`` and a navigation entry "Models" showing it.

Declared twice, as Airflow's own providers do: in the provider metadata (``plugins``) and as an
``airflow.plugins`` entry point, since Airflow loads the former only with ``[core]
lazy_discover_providers = False``. Task processes load plugins too and never serve the page, so
this module stays light: the app (FastAPI routes, Airflow's ORM and security) is imported on the
first request.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_predone.plugins.links import URL_PREFIX


class LazyPageApp:
    """An ASGI app that builds the page's FastAPI app (:func:`.page_app.create_app`) when first called."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            from airflow_provider_predone.plugins.page_app import create_app

            self.app = create_app()
        await self.app(scope, receive, send)

    def __repr__(self) -> str:  # Airflow's /api/v2/plugins lists the app by this
        return "airflow_provider_predone.plugins.page_app:create_app"


class PredoneModelsPlugin(AirflowPlugin):
    """The "Models" page: its app and its entry in the UI's navigation (Airflow 3.1+)."""

    name = "predone_models"
    fastapi_apps = [{"app": LazyPageApp(), "url_prefix": URL_PREFIX, "name": "Prediction One and AiTEMS models"}]
    # Shown inside the UI (an iframe at /plugin/predone-models); Airflow 3.0 ignores this attribute.
    external_views = [
        {
            "name": "Models",
            "href": f"{URL_PREFIX}/",
            "icon": f"{URL_PREFIX}/icon.svg",
            "url_route": "predone-models",
            "destination": "nav",
        }
    ]
