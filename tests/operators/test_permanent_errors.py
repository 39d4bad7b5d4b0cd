"""
Failures that cannot heal by waiting fail the task without Airflow's retries; transient ones
keep them (issue 26: a wrong secret key, an unknown AiTEMS service and a scoring input missing a
model column all went ``up_for_retry``, and with 2 retries x 5 min a wrong key took over ten
minutes to fail).

Real DAG runs (``dag.test()``) against the emulator, every task with ``retries=2``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import DAGS, DATA, predone_connection, run_dag, wait_for

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import (
    NOT_RETRIED,
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    JobFailedError,
    JobNotFinishedError,
    JobTimeoutError,
    NetworkSettingsError,
    NotFoundError,
    PermanentError,
    PredictionApiNotRunningError,
    ServerError,
    TransferError,
    TransientApiError,
    UnexpectedResponseError,
)
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.triggers.base import validate_event

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


def running_prediction_api(hook: PredictionOneHook) -> tuple[int, str]:
    """A model trained on the example data, deployed: ``(model_id, classifier_id)``."""
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "permanent", CONFIG)
    wait_for("the training", lambda: hook.get_train_status(urls.external_process_id).status == "finished")
    model_id = hook.find_model_id("permanent")
    assert model_id is not None
    classifier_id = hook.create_prediction_api(model_id).classifier_id
    wait_for("the prediction API", lambda: hook.get_prediction_api(classifier_id).status == "running")
    return model_id, classifier_id


def without_column(source: Path, target: Path, column: str) -> Path:
    with source.open(newline="") as f:
        rows = list(csv.reader(f))
    index = rows[0].index(column)
    with target.open("w", newline="") as f:
        csv.writer(f).writerows([row[:index] + row[index + 1 :] for row in rows])
    return target


def tries(result: Any) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in result.dag_run.get_task_instances()}


def test_permanent_failures_end_failed_on_the_first_try_a_transient_one_is_retried(
    connections: EmulatorProcess, airflow_db: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WRONG_SECRET",
        json.dumps({"conn_type": "predone", "host": connections.url, "password": "not-the-secret-key"}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SERVICE_TYPO", predone_connection(connections.url, service="global"))
    # Port 9 (discard) has no listener on 127.0.0.1 here: every connection is refused.
    monkeypatch.setenv("AIRFLOW_CONN_UNREACHABLE", predone_connection("http://127.0.0.1:9", max_retries=0))
    model_id, classifier_id = running_prediction_api(PredictionOneHook())

    result = run_dag(
        DAGS,
        "predone_permanent_errors",
        classifier_id=classifier_id,
        model_id=model_id,
        input=str(without_column(DATA / "score.csv", tmp_path / "no_plan.csv", "plan")),
        output=str(tmp_path / "scored.csv"),
        retrain_data=str(DATA / "score.csv"),  # no target column: the service's job fails
    )

    permanent = [
        "wrong_secret_key",
        "unknown_aitems_service",
        "missing_model_column",
        "failed_retrain_job",
        "service_typo",
    ]
    assert result.states == dict.fromkeys([*permanent, "unreachable_service"], "failed")
    assert tries(result) == {**dict.fromkeys(permanent, 1), "unreachable_service": 3}


def test_the_messages_say_what_to_fix_and_that_the_task_is_not_retried(
    connections: EmulatorProcess, monkeypatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WRONG_SECRET",
        json.dumps({"conn_type": "predone", "host": connections.url, "password": "not-the-secret-key"}),
    )
    with pytest.raises(AuthenticationError) as refused:
        list(PredictionOneHook("wrong_secret").list_models())
    message = str(refused.value)
    assert "Secret key (its password field) is wrong" in message
    assert f"{NOT_RETRIED}: correct the connection's keys" in message
    assert message.count(NOT_RETRIED) == 1

    with pytest.raises(NotFoundError) as unknown:
        AitemsHook().list_trainings("nosuchservice1")
    assert "nosuchservice1" in str(unknown.value)
    assert f"{NOT_RETRIED}: check the id the task was given" in str(unknown.value)


def test_a_connection_test_reports_the_refusal_without_the_note_meant_for_tasks(
    connections: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WRONG_SECRET",
        json.dumps({"conn_type": "predone", "host": connections.url, "password": "not-the-secret-key"}),
    )
    ok, message = PredictionOneHook("wrong_secret").test_connection()
    assert not ok
    assert "Secret key (its password field) is wrong" in message
    assert NOT_RETRIED not in message


def test_a_permanent_error_from_a_trigger_stays_permanent_and_says_so_once() -> None:
    """A trigger's error event carries the message (with the note) and the type's name; the
    resumed task raises the same type, so Airflow does not retry it either."""
    message = str(NotFoundError("Retrain Status Check failed: 'Not found retrain job.'"))
    event = {"status": "error", "message": f"retrain job (retrain_job_id=x): {message}", "error_type": "NotFoundError"}
    with pytest.raises(NotFoundError) as raised:
        validate_event(event)
    assert str(raised.value).count(NOT_RETRIED) == 1
    with pytest.raises(JobFailedError, match=NOT_RETRIED):
        validate_event({"status": "failure", "message": "retrain job (x) ended with status 'job_failed'"})


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (AuthenticationError, True),
        (NotFoundError, True),
        (BadRequestError, True),
        (NetworkSettingsError, True),
        (JobFailedError, True),
        (InvalidInputError, True),
        (TransientApiError, False),
        (ServerError, False),
        (JobNotFinishedError, False),  # waiting for the retrain job heals it
        (PredictionApiNotRunningError, False),  # a prediction API being built
        (UnexpectedResponseError, False),
        (TransferError, False),
        (JobTimeoutError, False),  # a retried task re-attaches and waits again
    ],
)
def test_which_errors_are_permanent(error: type[Exception], permanent: bool) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    instance = error("x")
    assert isinstance(instance, AirflowFailException) is permanent
    if issubclass(error, ApiError):
        assert isinstance(instance, PermanentError) is permanent
