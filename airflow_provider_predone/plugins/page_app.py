"""
The "Models" page's FastAPI app, served by the api-server under ``/predone-models`` (see
:mod:`.models_page` for the plugin that mounts it).

Airflow mounts a plugin's app as it is, without authentication: every route here depends on
Airflow's own ``get_user`` (a bearer token or the UI's cookie) and asks the configured auth
manager, so an anonymous request is refused with 401 and a user sees only the DAGs, assets and
XComs the auth manager lets them read. On Airflow 3.0 the plugin loads (its external view is
ignored there); the page needs 3.1's UI plugins to appear in the UI.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import AssetDetails, DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import get_user, requires_access_asset, requires_access_dag
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from airflow_provider_predone.plugins import render
from airflow_provider_predone.plugins.history import HistoryReader, TaskRef
from airflow_provider_predone.plugins.links import URL_PREFIX

ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><polyline points="3 17 9 11 13 15 21 7"/>'
    '<polyline points="15 7 21 7 21 13"/></svg>'
)

User = Annotated[Any, Depends(get_user)]


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def reader_for(session: Any, user: Any) -> HistoryReader:
    """A :class:`HistoryReader` that sees what ``user`` may read, as the auth manager says."""
    manager = _auth_manager()

    @cache
    def may_read_xcom(dag_id: str) -> bool:
        return bool(
            manager.is_authorized_dag(
                method="GET", access_entity=DagAccessEntity.XCOM, details=DagDetails(id=dag_id), user=user
            )
        )

    def may_read_asset(asset_id: int) -> bool:
        return bool(manager.is_authorized_asset(method="GET", details=AssetDetails(id=str(asset_id)), user=user))

    readable = manager.get_authorized_dag_ids(user=user, method="GET")
    return HistoryReader(session, readable, may_read_xcom=may_read_xcom, may_read_asset=may_read_asset)


def _paths(request: Request) -> tuple[str, str]:
    """The Airflow UI's root and this page's path, as the browser sees them (behind a root path too)."""
    page = str(request.scope.get("root_path", "")).rstrip("/") or URL_PREFIX
    ui_base = page[: -len(URL_PREFIX)] if page.endswith(URL_PREFIX) else ""
    return ui_base, f"{page}/"


def create_app() -> FastAPI:
    """The page's FastAPI app (mounted by the api-server under :data:`URL_PREFIX`)."""
    app = FastAPI(title="Prediction One and AiTEMS models", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(requires_access_asset("GET"))])
    def models(
        request: Request,
        session: SessionDep,
        user: User,
        model: Annotated[str | None, Query(max_length=1500)] = None,
    ) -> HTMLResponse:
        """Every model the user may see, or only ``model`` (its asset URI)."""
        histories = reader_for(session, user).models(only_model=model)
        ui_base, page_url = _paths(request)
        html = render.page(histories, ui_base, page_url, single=model is not None)
        # The page names DAGs and runs: keep it out of shared caches.
        return HTMLResponse(html, headers={"Cache-Control": "private, no-store"})

    @app.get(
        "/task",
        dependencies=[
            Depends(requires_access_asset("GET")),
            Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
        ],
    )
    def task_model(
        request: Request,
        session: SessionDep,
        user: User,
        dag_id: Annotated[str, Query(max_length=250)],
        run_id: Annotated[str, Query(max_length=250)],
        task_id: Annotated[str, Query(max_length=250)],
        map_index: int = -1,
    ) -> RedirectResponse:
        """Where an operator extra link lands: the page of the model the task worked on (else every model)."""
        uri = reader_for(session, user).model_of_task(TaskRef(dag_id, run_id, task_id, map_index))
        _, page_url = _paths(request)
        target = f"{page_url}?model={quote(uri, safe='')}" if uri else page_url
        return RedirectResponse(target, status_code=303)

    @app.get("/icon.svg")
    def icon() -> Response:
        """The menu entry's icon (public: it is a drawing, as Airflow's own icons are)."""
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    return app
