"""
The README's DAG is real: it parses, and its templates render on a manual or API-triggered run,
which on Airflow 3 has no logical date (so no ``ds``: ``{{ ds }}`` fails such a run).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from helpers import REPO

RUN_AFTER = datetime(2026, 12, 3, 4, 5, 6, tzinfo=UTC)


def readme_dag() -> Any:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "the README has one DAG"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    from airflow.sdk import DAG

    dags = [value for value in namespace.values() if isinstance(value, DAG)]
    if not dags:  # ``with DAG(...):`` without ``as``: the tasks know their DAG
        tasks = [value for value in namespace.values() if isinstance(getattr(value, "dag", None), DAG)]
        dags = list({id(task.dag): task.dag for task in tasks}.values())
    assert len(dags) == 1
    return dags[0]


def manual_run_context(dag: Any) -> dict[str, Any]:
    """What Airflow 3's task runner gives templates on a manual run: ``run_after``, no logical date."""
    run_id = f"manual__{RUN_AFTER.isoformat()}"
    return {
        "dag": dag,
        "dag_run": SimpleNamespace(run_id=run_id, run_after=RUN_AFTER, logical_date=None, conf={}),
        "run_id": run_id,
        # The switch's XCom input, as the retrain task (which needs the service) would push it.
        "ti": SimpleNamespace(xcom_pull=lambda **_: "retrain-job-1"),
        "params": {},
        "conn": None,
        "var": None,
        "macros": None,
    }


def test_the_readme_dag_renders_on_a_manual_run() -> None:
    dag = readme_dag()
    assert dag.dag_id == "monthly_retrain"
    retrain = dag.get_task("retrain")
    context = manual_run_context(dag)
    retrain.render_template_fields(context, dag.get_template_env())
    assert retrain.train_data == "s3://my-bucket/purchases/2026-12-03.csv"
    # Every task renders (a template error would fail the run before any work).
    switch = dag.get_task("switch")
    switch.render_template_fields(context, dag.get_template_env())
    assert switch.retrain_job_id == "retrain-job-1"


def test_ds_is_undefined_on_a_manual_run() -> None:
    """Why the README avoids ``{{ ds }}``: on a run without a logical date it fails the task."""
    dag = readme_dag()
    with pytest.raises(jinja2.UndefinedError, match="'ds' is undefined"):
        dag.get_template_env().from_string("{{ ds }}").render(manual_run_context(dag))
