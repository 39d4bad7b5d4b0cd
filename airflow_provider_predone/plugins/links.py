"""
The operator extra link "Model history": from a task of train, retrain, switch, approval or
batch scoring to its model's page in the Airflow UI (the provider's "Models" page, Airflow 3.1+).

Airflow 3 computes an extra link once, in the task's process when the task ends, and keeps it
in XCom; so the link names the task, and the page (in the api-server, with the user's
permissions) finds which model the task worked on. Importing this module stays cheap: it runs
at every DAG parse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.providers.common.compat.sdk import BaseOperatorLink, conf

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator

#: where the api-server mounts the page's FastAPI app (a prefix Airflow does not reserve)
URL_PREFIX = "/predone-models"
#: the link's label in the task's view
LINK_NAME = "Model history"


def task_link(dag_id: str, run_id: str, task_id: str, map_index: int = -1, base_url: str = "") -> str:
    """
    The page that shows the model a task worked on: ``<base_url>/predone-models/task?...``.

    :param base_url: the UI's address (``[api] base_url``); empty gives a path on the UI's host.
    """
    query: dict[str, Any] = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id}
    if map_index is not None and map_index >= 0:
        query["map_index"] = map_index
    return f"{base_url.rstrip('/')}{URL_PREFIX}/task?{urlencode(query)}"


class ModelPageLink(BaseOperatorLink):
    """A task's link to its model's history on the provider's "Models" page."""

    name = LINK_NAME

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        """
        The task's page address; the page resolves the task to its model.

        :param operator: the task's operator (unused: the task's ids suffice).
        :param ti_key: the task instance (its ``dag_id``, ``run_id``, ``task_id``, ``map_index``).
        """
        base_url = conf.get("api", "base_url", fallback="") or ""
        return task_link(
            ti_key.dag_id, ti_key.run_id, ti_key.task_id, getattr(ti_key, "map_index", -1), base_url=base_url
        )
