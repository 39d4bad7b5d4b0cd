"""
Human approval before a switch (``PredictionOneApproveSwitchOperator``), against the emulator.

The example DAG runs with ``dag.test()``; the reviewer is Airflow's own Core API (the app the
api-server serves, in this process, on the same metadata database) answering the pending
request the way the "Required actions" page does: read the request, then PATCH the choice.
The browser test of the same page is ``scripts/e2e_approval.py`` (``make e2e``).
"""

from __future__ import annotations

import subprocess
import threading
from typing import Any

import pytest
from helpers import EXAMPLES, REPO, run_dag, wait_for

from airflow_provider_predone.emulator import EmulatorProcess

try:
    import airflow.providers.standard.operators.hitl  # noqa: F401
except Exception:  # Airflow 3.0
    HITL = False
else:
    HITL = True

needs_hitl = pytest.mark.skipif(not HITL, reason="human-in-the-loop needs Airflow 3.1+ (tested on 3.0 below)")
DAG_ID = "predone_retrain_with_approval"
TASK_ID = "approve_and_switch"


@pytest.mark.skipif(HITL, reason="the error of Airflow 3.0, where there is no human-in-the-loop")
def test_airflow_3_0_fails_at_parse_naming_the_minimum_version() -> None:
    with pytest.raises(ImportError, match=r"needs Airflow 3\.1 or newer .*this is Airflow 3\.0"):
        import airflow_provider_predone.operators.approval  # noqa: F401


def test_the_other_operators_still_import_without_human_in_the_loop() -> None:
    # A fresh interpreter where the HITL module cannot be imported, as on Airflow 3.0.
    code = (
        "import sys; sys.modules['airflow.providers.standard.operators.hitl'] = None\n"
        "from airflow_provider_predone.operators.predone import PredictionOneSwitchModelOperator\n"
        "try:\n    import airflow_provider_predone.operators.approval\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [_python(), "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=REPO
    ).stdout
    assert "PredictionOneApproveSwitchOperator needs Airflow 3.1 or newer" in out


def _python() -> str:
    import sys

    return sys.executable


@needs_hitl
def test_review_body_puts_both_models_side_by_side() -> None:
    from airflow_provider_predone.metrics import GateVerdict
    from airflow_provider_predone.operators.approval import review_body

    record = {
        "retrain_job_id": "rj-1",
        "model_id": 7,
        "metrics": {"auc": 0.85, "rmse": 0.30},
        "previous_metrics": {"auc": 0.80, "rmse": 0.25},
        "sizes": {"trained_rows": 1200, "evaluation_rows": 300},
    }
    body = review_body(record, GateVerdict(True, "auc 0.85 >= threshold 0.8", "auc", 0.85, 0.80, 0.80))
    assert "`rj-1`" in body
    assert "`7`" in body
    assert "| auc | 0.8 | 0.85 | +0.05 | retrained |" in body
    assert "| rmse | 0.25 | 0.3 | +0.05 | served |" in body  # lower is better for an error
    assert "**Quality gate:** accepted — auc 0.85 >= threshold 0.8" in body
    assert "trained on: 1,200, evaluated on: 300" in body


class Reviewer(threading.Thread):
    """Answers the DAG run's pending approval through Airflow's Core API, as the UI does."""

    def __init__(self, choice: str, timeout: float = 240.0) -> None:  # the DAG's retrain comes first
        super().__init__(daemon=True)
        self.choice, self.timeout = choice, timeout
        self.request: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._answer()
        except BaseException as error:  # reported by the test, which fails on it
            self.error = error

    def _answer(self) -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        client = TestClient(create_app("core"), raise_server_exceptions=False)  # a 5xx, as a browser gets

        def pending() -> dict[str, Any] | None:
            answer = client.get("/api/v2/dags/~/dagRuns/~/hitlDetails", params={"dag_id": DAG_ID})
            if answer.status_code >= 500:  # e.g. sqlite busy while the DAG run writes: ask again, as the page does
                return None
            assert answer.status_code == 200, answer.text
            waiting = [d for d in answer.json()["hitl_details"] if not d["response_received"]]
            return waiting[0] if waiting else None

        self.request = wait_for("the approval request", pending, timeout=self.timeout, interval=0.5)
        ti = self.request["task_instance"]
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{TASK_ID}/-1/hitlDetails"
        answer = client.patch(path, json={"chosen_options": [self.choice], "params_input": {}})
        assert answer.status_code == 200, answer.text


def run_with_reviewer(choice: str, model_id: int) -> tuple[Any, Reviewer]:
    reviewer = Reviewer(choice)
    reviewer.start()
    result = run_dag(EXAMPLES, DAG_ID, model_id=model_id)
    reviewer.join(5)
    assert reviewer.error is None, reviewer.error
    return result, reviewer


@needs_hitl
@pytest.mark.timeout(300)
def test_approve_switches_once_and_reject_switches_nothing(
    connections: EmulatorProcess, airflow_db, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    # The in-process Core API lets every request in as an admin, as `airflow standalone` can.
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    model_id = run_dag(EXAMPLES, "predone_train", result_dir=str(tmp_path)).xcom("train")["model_id"]
    PredictionOneHook().create_prediction_api(model_id)

    approved, reviewer = run_with_reviewer("Approve", model_id)
    assert approved.states == {"retrain": "success", TASK_ID: "success"}
    assert reviewer.request is not None
    body = reviewer.request["body"]
    assert "| Metric | Served model | Retrained model | Change | Better |" in body
    assert "| auc |" in body
    assert "**Quality gate:** accepted" in body
    record = approved.xcom(TASK_ID)
    assert record["switched"] is True
    assert record["approval"]["decision"] == "approved"
    assert record["approval"]["by"]  # the Core API's user
    assert record["metrics"]["auc"] >= record["previous_metrics"]["auc"]
    assert connections.state()["model_switches"] == 1

    rejected, _ = run_with_reviewer("Reject", model_id)
    assert rejected.states == {"retrain": "success", TASK_ID: "skipped"}  # on_refusal="skip"
    assert rejected.xcom(TASK_ID)["approval"]["decision"] == "rejected"
    assert rejected.xcom(TASK_ID)["switched"] is False
    state = connections.state()
    assert (state["retrain_jobs_started"], state["model_switches"]) == (2, 1)
