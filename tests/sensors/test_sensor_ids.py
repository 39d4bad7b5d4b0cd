"""Each sensor says how its ids are checked; the shared base knows no field by name."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.operators._xcom import model_id_value
from airflow_provider_predone.sensors.aitems import AitemsTrainingSensor
from airflow_provider_predone.sensors.base import JobSensor
from airflow_provider_predone.sensors.predone import PredictionOneRetrainSensor


class _NamedModelSensor(JobSensor):
    """A sensor of another vendor whose ``model_id`` is a text id, not Prediction One's number."""

    id_fields = ("model_id",)
    conn_field = "conn_id"

    def __init__(self, *, model_id: Any, **kwargs: Any) -> None:
        self.model_id = model_id
        self.conn_id = "x"
        super().__init__(**kwargs)


def test_a_field_named_model_id_is_a_path_id_unless_the_sensor_says_otherwise() -> None:
    sensor = _NamedModelSensor(task_id="wait", model_id=" m-1 ", deferrable=False)
    sensor._check_ids()
    assert sensor.model_id == "m-1"
    bad = _NamedModelSensor(task_id="bad", model_id="a/b", deferrable=False)
    with pytest.raises(InvalidInputError, match="model_id must be a non-empty id without '/'"):
        bad._check_ids()


def test_the_retrain_sensor_takes_a_model_id_or_the_train_tasks_result() -> None:
    for given in (7, "7", {"model_id": 7, "model_name": "m"}):
        sensor = PredictionOneRetrainSensor(task_id="wait", retrain_job_id=" job-1 ", model_id=given, deferrable=False)
        sensor._check_ids()
        assert (sensor.retrain_job_id, sensor.model_id) == ("job-1", 7)
    with pytest.raises(InvalidInputError, match="model_id must be a positive integer id"):
        PredictionOneRetrainSensor(task_id="bad", retrain_job_id="j", model_id="m-1", deferrable=False)._check_ids()


def test_the_aitems_sensor_checks_each_version_by_name() -> None:
    sensor = AitemsTrainingSensor(task_id="wait", service_id="s", train_type="pop", version="v/1", deferrable=False)
    with pytest.raises(InvalidInputError, match=r"versions\['pop'\] must be a non-empty id"):
        sensor._check_ids()


def test_xcom_unwrapping_lives_with_the_operators_and_the_protocol_name_is_deprecated() -> None:
    assert model_id_value({"model_id": "3"}) == 3
    from airflow_provider_predone.protocol import predone as api

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert api.model_id_value({"model_id": 4}) == 4
    assert any(issubclass(w.category, DeprecationWarning) and "operators._xcom" in str(w.message) for w in caught)
