"""Retry records (task_state_store on Airflow 3.3+, Variables before) are deleted on final failure too.

Run on Airflow 3.3 and, for the Variables, on 3.0.6:
``.venv-3.0.6/bin/python -m pytest tests/operators/test_retry_records.py``.
"""

from __future__ import annotations

from helpers import DAGS, DATA, run_dag

from airflow_provider_predone._task_state import clear_on_failure
from airflow_provider_predone.emulator import EmulatorProcess


def records(run_id: str) -> list[str]:
    """What the metadata database still holds for the run: retry Variables and task_state_store rows."""
    from airflow.models import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import inspect, text

    with create_session() as session:
        found = [v.key for v in session.query(Variable).all() if run_id in v.key]
        if inspect(session.get_bind()).has_table("task_state_store"):
            rows = session.execute(text("SELECT task_id, key FROM task_state_store WHERE run_id = :r"), {"r": run_id})
            found += [f"task_state_store:{task}:{key}" for task, key in rows]
    return found


def test_a_final_failure_leaves_no_retry_record(connections: EmulatorProcess, airflow_db) -> None:
    result = run_dag(DAGS, "predone_final_failure", data=str(DATA))
    assert result.states == {"train": "success", "retrain": "failed"}
    assert connections.state()["retrain_jobs_started"] == 1  # the record existed: the job had started
    assert records(result.dag_run.run_id) == []


def test_the_users_failure_callbacks_are_kept() -> None:
    def mine(context: object) -> None: ...

    callbacks = clear_on_failure(mine, "training")
    assert callbacks[0] is mine
    assert repr(callbacks[1]) == "clear retry record 'training'"
    assert clear_on_failure(callbacks, "training") == callbacks  # not added twice
