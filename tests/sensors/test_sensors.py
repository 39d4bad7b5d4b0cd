"""Sensors: deferrable and poking, success and failure, and starting straight in the triggerer."""

from __future__ import annotations

import asyncio
import json

import pytest
from helpers import DAGS, DATA, run_dag

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.sensors.predone import PredictionOneRetrainSensor, PredictionOneTrainSensor
from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


def start_training(hook: PredictionOneHook, target: str) -> str:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "sensor", {**CONFIG, "tc": target})
    return urls.external_process_id


def test_sensors_succeed_and_fail_with_the_vendor_status(connections: EmulatorProcess, airflow_db) -> None:
    hook = PredictionOneHook()
    finished, failed = start_training(hook, "purchased_premium"), start_training(hook, "missing_column")
    aitems = AitemsHook()
    service = aitems.create_service("sensor_shop")["serviceId"]
    versions = aitems.request_training(service, ["pop"], description="[emulator-fail:learningFailed]")
    result = run_dag(DAGS, "predone_sensors", finished=finished, failed=failed, service=service, pop=versions["pop"])
    assert result.states == {
        "finished_deferrable": "success",
        "finished_poke": "success",
        "failed_deferrable": "failed",
        "failed_poke": "failed",
        "aitems_failed_deferrable": "failed",
        "aitems_failed_poke": "failed",
    }
    assert result.xcom("finished_poke") == {
        "external_process_id": finished,
        "status": "success",
        "job_status": "finished",
    }


def test_sensors_ended_in_the_trigger_succeed_with_their_result_or_fail(
    connections: EmulatorProcess, airflow_db, capsys
) -> None:
    # Each still running at its sensor's first poke (a task takes seconds to start on a busy
    # machine, and "failed" runs after "finished"), so both defer and their trigger ends them.
    hook = PredictionOneHook()
    connections.configure(job_seconds=10.0)
    finished = start_training(hook, "purchased_premium")
    connections.configure(job_seconds=25.0)
    failed = start_training(hook, "missing_column")
    result = run_dag(DAGS, "predone_sensors_ended_in_trigger", finished=finished, failed=failed)
    assert result.states == {"finished": "success", "failed": "failed"}
    # dag.test() resumes even a task its trigger ended, with the end state as the event: the
    # sensor then returns its ids (a real triggerer pushes the trigger's result, tests/cluster).
    assert result.xcom("finished") == {"external_process_id": finished, "status": "success", "job_status": None}
    out = capsys.readouterr().out
    assert "The trigger ended 'failed' as 'failed'" in out
    assert "the target column 'missing_column' is not in the data" in out  # the reason, from the trigger


def test_start_from_trigger_needs_no_worker_and_carries_no_secret(connections: EmulatorProcess) -> None:
    sensor = PredictionOneRetrainSensor(
        task_id="wait", retrain_job_id="job-1", model_id=7, start_from_trigger=True, poke_interval=5, timeout=600
    )
    args = sensor.start_trigger_args
    assert sensor.start_from_trigger is True
    assert args.trigger_cls == "airflow_provider_predone.triggers.predone.PredictionOneRetrainTrigger"
    assert args.next_method == "execute_complete"
    assert args.trigger_kwargs == {
        "retrain_job_id": "job-1",
        "model_id": 7,
        "conn_id": "predone_default",
        "poll_interval": 5.0,
        "success_statuses": None,
        "failure_statuses": None,
        "running_statuses": None,
        "end_from_trigger": False,
        "deadline": None,
        "timeout": 600.0,
    }
    assert "predone-demo-secret-key" not in json.dumps(args.trigger_kwargs)


async def test_a_trigger_built_from_start_trigger_args_runs_to_its_event(connections: EmulatorProcess) -> None:
    epid = start_training(PredictionOneHook(), "purchased_premium")
    sensor = PredictionOneTrainSensor(
        task_id="wait", external_process_id=epid, start_from_trigger=True, poke_interval=0.2, timeout=30
    )
    kwargs = sensor.start_trigger_args.trigger_kwargs
    event = await asyncio.wait_for(PredictionOneTrainTrigger(**kwargs).run().__anext__(), 30)
    assert event.payload["status"] == "success"
    assert sensor.execute_complete({}, event.payload)["job_status"] == "finished"


def test_end_from_trigger_needs_a_wait_in_the_triggerer() -> None:
    with pytest.raises(InvalidInputError, match=r"end_from_trigger=True .* deferrable=True or start_from_trigger=True"):
        PredictionOneTrainSensor(task_id="wait", external_process_id="p1", deferrable=False, end_from_trigger=True)
    assert PredictionOneTrainSensor(
        task_id="wait", external_process_id="p1", start_from_trigger=True, end_from_trigger=True
    ).start_trigger_args.trigger_kwargs["end_from_trigger"]


def test_every_sensor_names_its_trigger_class_not_a_string() -> None:
    """A renamed or moved trigger breaks at type-check and here, not in the triggerer at run time."""
    import importlib
    import inspect

    from airflow_provider_predone.sensors import aitems, predone
    from airflow_provider_predone.sensors.base import JobSensor
    from airflow_provider_predone.triggers.base import StatusTrigger

    sensors = [
        c for m in (predone, aitems) for _, c in inspect.getmembers(m, inspect.isclass) if issubclass(c, JobSensor)
    ]
    concrete = [c for c in sensors if not c.__name__.startswith("_") and c is not JobSensor]
    assert len(concrete) == 7  # Prediction One 3; AiTEMS training, dataset, service, update
    for sensor in concrete:
        assert not hasattr(sensor, "trigger_path")
        trigger = sensor.trigger_class()
        assert issubclass(trigger, StatusTrigger)
        # the path Airflow needs for start_from_trigger is derived from the class and finds it
        assert getattr(importlib.import_module(trigger.__module__), trigger.__qualname__) is trigger
