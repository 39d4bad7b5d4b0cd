"""Operators take only the parameters they honour; errors name the operation and the ids."""

from __future__ import annotations

import pytest

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import ApiError, NotFoundError
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.operators import predone as ops

NOT_WAITING = {
    ops.PredictionOneSwitchModelOperator: {"retrain_job_id": "j"},
    ops.PredictionOneBatchPredictOperator: {"classifier_id": "c", "input_data": "i.csv", "output_data": "o.csv"},
    ops.PredictionOneListModelsOperator: {},
    ops.PredictionOneListDataSetsOperator: {},
    ops.PredictionOneListPredictionApisOperator: {},
    ops.PredictionOneDeleteModelOperator: {"model_id": 1},
    ops.PredictionOneDeleteDataSetOperator: {"data_set_id": 1},
    ops.PredictionOneDeletePredictionApiOperator: {"classifier_id": "c"},
}


@pytest.mark.parametrize("operator", list(NOT_WAITING), ids=lambda c: c.__name__)
@pytest.mark.parametrize("parameter", ["deferrable", "poll_interval", "timeout", "running_statuses"])
def test_operators_that_do_not_wait_refuse_waiting_parameters(operator, parameter: str) -> None:
    with pytest.raises(TypeError, match=f"Invalid arguments were passed to {operator.__name__}") as raised:
        operator(task_id="t", **NOT_WAITING[operator], **{parameter: 1})
    assert f"'{parameter}'" in str(raised.value)  # Airflow names the parameter


def test_operators_that_wait_take_every_waiting_parameter() -> None:
    waiting = {
        "deferrable": True,
        "poll_interval": 1,
        "timeout": 10,
        "success_statuses": ["done"],
        "failure_statuses": ["broken"],
        "running_statuses": ["busy"],
    }
    retrain = ops.PredictionOneRetrainOperator(task_id="r", model_id=1, train_data="x.csv", **waiting)
    assert retrain.trigger_kwargs()["running_statuses"] == ["busy"]
    ops.PredictionOneCreatePredictionApiOperator(task_id="c", model_id=1, **waiting)
    from airflow_provider_predone.operators.aitems import AitemsTrainOperator

    AitemsTrainOperator(task_id="a", service_id="s", train_types=["pop"], **waiting)


def test_on_refusal_is_checked_at_parse() -> None:
    from airflow_provider_predone.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"on_refusal must be one of \['fail', 'skip'\]"):
        ops.PredictionOneSwitchModelOperator(task_id="s", retrain_job_id="j", on_refusal="ignore")


def test_a_deleted_model_is_named_in_the_get_api_key_error(connections: EmulatorProcess) -> None:
    with pytest.raises(ApiError) as raised:
        PredictionOneHook().get_retrain_upload_url(4242, "new.csv")
    message = str(raised.value)
    assert "Get API Key" in message
    assert "model_id=4242" in message


def test_an_unknown_training_is_named_in_the_status_error(connections: EmulatorProcess) -> None:
    with pytest.raises(NotFoundError) as raised:
        PredictionOneHook().get_train_status("no-such-process")
    assert "Train Status Check" in str(raised.value)
    assert "external_process_id=no-such-process" in str(raised.value)
