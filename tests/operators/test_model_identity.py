"""
Which model a task means, when runs overlap (issue 22, points 6 and 7), against the emulator.

- Two trainings with one ``model_name``: neither may report the other's model.
- Two retrains of one model: the switch of the older one, after the newer one was switched,
  is refused unless ``allow_older=True``; a quality gate is not judged against "previous"
  metrics of a model that is no longer served; an approval re-checks when it arrives.

The operators run in this process (``execute`` / ``execute_complete`` with a small task
context: XComs and the task's retry record in dicts), over HTTP to the emulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, wait_for

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import AmbiguousModelError, OlderModelError, StaleBaselineError
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.metrics import metric_gate
from airflow_provider_predone.operators.predone import (
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
)

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
FAST = {"poll_interval": 0.1, "timeout": 60, "deferrable": False}


class TaskInstance:
    """What the operators use of a task instance: ids for the retry record, and XComs."""

    def __init__(self, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "model_identity", f"run-{task_id}", task_id, -1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value") -> Any:
        return self.xcoms.get(key)


class TaskStateStore(dict[str, Any]):
    """Airflow 3.3's ``task_state_store``: kept across a task's tries, as Airflow keeps it."""

    def set(self, name: str, value: Any) -> None:
        self[name] = value

    def delete(self, name: str) -> None:
        self.pop(name, None)


def task_context(task_id: str) -> dict[str, Any]:
    ti = TaskInstance(task_id)
    return {"ti": ti, "task_instance": ti, "task_state_store": TaskStateStore()}


def trained_model_of(result_dir: Path, external_process_id: str) -> int:
    """The model a training made, as its own result archive says (the emulator's summary)."""
    summary = json.loads((result_dir / external_process_id / "model_summary.json").read_text())
    return int(summary["model_id"])


def test_two_trainings_with_one_name_never_report_each_others_model(connections: EmulatorProcess, tmp_path) -> None:
    def train(task_id: str) -> PredictionOneTrainOperator:
        return PredictionOneTrainOperator(
            task_id=task_id,
            train_data=str(DATA / "train.csv"),
            model_name="sales",
            config=CONFIG,
            result_dir=str(tmp_path),
            wait_for_completion=False,
            **FAST,
        )

    first, second = train("first"), train("second")
    first_context, second_context = task_context("first"), task_context("second")
    # Both start before either finishes: the first's model exists when the second starts.
    first.execute(first_context)
    second_started = second.execute(second_context)
    # The retry record holds the models of that name that existed before each request.
    assert first_context["task_state_store"]["training"]["existing_model_ids"] == []
    assert len(second_context["task_state_store"]["training"]["existing_model_ids"]) == 1
    # Each task runs again and waits (a retry re-attaches to its own training).
    first.wait_for_completion = second.wait_for_completion = True
    second_result = second.execute(second_context)
    assert second_result["external_process_id"] == second_started["external_process_id"]
    assert second_result["model_id"] == trained_model_of(tmp_path, second_started["external_process_id"])
    # The first cannot tell its model from the second's (both are new to it): it says so.
    with pytest.raises(AmbiguousModelError) as raised:
        first.execute(first_context)
    (first_model,) = set(PredictionOneHook().model_ids_named("sales")) - {second_result["model_id"]}
    message = str(raised.value)
    assert str(first_model) in message
    assert str(second_result["model_id"]) in message
    assert "sales-{{ run_id }}" in message
    assert raised.value.model_ids == sorted([first_model, second_result["model_id"]])


# --- retrains of one model -----------------------------------------------------------------------


@pytest.fixture
def two_retrains(connections: EmulatorProcess) -> tuple[int, str, str]:
    """A served model and two finished retrain jobs of it: ``older`` started first."""
    hook = PredictionOneHook()
    trained = PredictionOneTrainOperator(
        task_id="train", train_data=str(DATA / "train.csv"), model_name="retrained", config=CONFIG, **FAST
    ).execute(task_context("train"))
    model_id = int(trained["model_id"])
    classifier_id = hook.create_prediction_api(model_id).classifier_id
    wait_for("the prediction API", lambda: hook.get_prediction_api(classifier_id).status == "running")
    jobs = []
    for name in ("older", "newer"):
        upload = hook.get_retrain_upload_url(model_id, f"{name}.csv")
        hook.upload_retrain_data(upload, model_id, files.resolve(name, DATA / "new_month.csv"))
        jobs.append(upload.retrain_job_id)
    for job in jobs:
        wait_for(f"retrain job {job}", lambda j=job: hook.get_retrain_status(j, model_id).status == "job_finished")
    return model_id, jobs[0], jobs[1]


def served_version(model_id: int) -> int | None:
    versions = {p.version for p in PredictionOneHook().list_prediction_apis() if p.model_id == model_id}
    assert len(versions) == 1
    return versions.pop()


def switch(task_id: str, model_id: int, retrain_job_id: str, **kwargs: Any) -> dict[str, Any]:
    operator = PredictionOneSwitchModelOperator(
        task_id=task_id, retrain_job_id=retrain_job_id, model_id=model_id, **kwargs
    )
    result: dict[str, Any] = operator.execute(task_context(task_id))
    return result


def test_an_older_retrain_does_not_replace_a_newer_one_unless_allowed(two_retrains) -> None:
    model_id, older, newer = two_retrains
    assert served_version(model_id) == 1
    switched = switch("newer", model_id, newer)
    assert switched["switched"] is True
    assert switched["retrained_version"] == 3
    assert switched["served_version"] == 1
    assert served_version(model_id) == 3

    with pytest.raises(OlderModelError) as refused:
        switch("older", model_id, older)
    assert "version 2" in str(refused.value)
    assert "version 3" in str(refused.value)
    assert "allow_older=True" in str(refused.value)
    assert served_version(model_id) == 3  # nothing was switched

    allowed = switch("older_allowed", model_id, older, allow_older=True)
    assert allowed["switched"] is True
    assert served_version(model_id) == 2
    # The newer job is newer than what is served again: switched back, no keyword needed.
    assert switch("newer_again", model_id, newer)["switched"] is True
    assert served_version(model_id) == 3
    # A retried switch finds its own version served: not older, switched again (no change).
    assert switch("newer_retried", model_id, newer)["switched"] is True
    assert served_version(model_id) == 3


def test_an_older_retrain_refused_with_on_refusal_skip_is_skipped(two_retrains) -> None:
    from airflow.providers.common.compat.sdk import AirflowSkipException

    model_id, older, newer = two_retrains
    switch("newer", model_id, newer)
    with pytest.raises(AirflowSkipException, match="older than version 3"):
        switch("older", model_id, older, on_refusal="skip")
    assert served_version(model_id) == 3


def test_the_gate_is_not_judged_against_metrics_of_a_model_no_longer_served(two_retrains) -> None:
    model_id, older, newer = two_retrains
    always = metric_gate("auc", min_gain=-1.0)  # accepts whatever the comparison
    switch("older", model_id, older, quality_gate=always)  # newer than the served version 1
    assert served_version(model_id) == 2
    # The newer job's archive compares it with version 1, served when it began; 2 is served now.
    with pytest.raises(StaleBaselineError) as refused:
        switch("newer", model_id, newer, quality_gate=always)
    assert "version 1" in str(refused.value)
    assert "version 2" in str(refused.value)
    assert served_version(model_id) == 2
    # Without a gate there is nothing to compare: a newer model is switched.
    assert switch("newer_ungated", model_id, newer)["switched"] is True
    assert served_version(model_id) == 3


def test_an_approval_arriving_after_a_newer_switch_is_refused(two_retrains) -> None:
    approval = pytest.importorskip("airflow_provider_predone.operators.approval", exc_type=ImportError)
    model_id, older, newer = two_retrains
    operator = approval.PredictionOneApproveSwitchOperator(task_id="approve", retrain_job_id=older, model_id=model_id)
    context = task_context("approve")
    # The review is written while version 1 is served: the older job is newer than that.
    record = operator.review(context)
    assert record["retrained_version"] == 2
    assert record["served_version"] == 1
    assert "version 2" in operator.body
    assert "version 1" in operator.body
    # Days later: the newer job was switched in the meantime, then the approval arrives.
    switch("newer", model_id, newer)
    event = {
        "chosen_options": [approval.APPROVE],
        "params_input": {},
        "responded_at": datetime.now(UTC),
        "responded_by_user": {"id": "u1", "name": "Reviewer"},
    }
    with pytest.raises(OlderModelError, match=r"version 2.*version 3"):
        operator.execute_complete(context, event)
    assert served_version(model_id) == 3
    assert context["ti"].xcoms["return_value"]["switched"] is False
    assert context["ti"].xcoms["return_value"]["approval"]["decision"] == "approved"


def test_a_retrain_whose_archive_names_only_its_previous_version_is_refused_once_another_was_switched(
    two_retrains,
) -> None:
    model_id, older, newer = two_retrains
    switch("newer", model_id, newer)
    # An archive that says what it compared with (version 1) but not which version it made.
    operator = PredictionOneSwitchModelOperator(task_id="unnamed", retrain_job_id=older, model_id=model_id)
    record = {"retrain_job_id": older, "model_id": model_id, "previous_version": 1}
    with pytest.raises(OlderModelError, match="began while version 1 was served; version 3"):
        operator.check_served(task_context("unnamed"), record, f"retrain job {older}")
    allowed = PredictionOneSwitchModelOperator(
        task_id="unnamed_allowed", retrain_job_id=older, model_id=model_id, allow_older=True
    )
    allowed.check_served(task_context("unnamed_allowed"), dict(record), f"retrain job {older}")  # no refusal


def test_an_approval_of_a_newer_model_is_refused_when_the_reviewed_comparison_went_stale(two_retrains) -> None:
    approval = pytest.importorskip("airflow_provider_predone.operators.approval", exc_type=ImportError)
    model_id, older, newer = two_retrains
    operator = approval.PredictionOneApproveSwitchOperator(task_id="approve", retrain_job_id=newer, model_id=model_id)
    context = task_context("approve")
    operator.review(context)  # the reviewer sees version 3 next to version 1, served then
    switch("older", model_id, older)  # version 2 is switched in while the request waits
    event = {
        "chosen_options": [approval.APPROVE],
        "params_input": {},
        "responded_at": datetime.now(UTC),
        "responded_by_user": {"id": "u1", "name": "Reviewer"},
    }
    with pytest.raises(StaleBaselineError, match=r"version 1.*version 2 is served now"):
        operator.execute_complete(context, event)
    assert served_version(model_id) == 2
