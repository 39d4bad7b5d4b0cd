"""Statuses the vendor does not document: unknown ones, strict sets, failures carried by a message.

Every case runs against the emulator; its statuses are made "unknown" by the user's sets,
exactly as an undocumented status of the real service would be.
"""

from __future__ import annotations

import time

import pytest
from helpers import DAGS, DATA, run_dag

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import Phase
from airflow_provider_predone.triggers.predone import PredictionOneRetrainTrigger, PredictionOneTrainTrigger

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


def start_training(hook: PredictionOneHook, target: str = "purchased_premium") -> str:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "statuses", {**CONFIG, "tc": target})
    return urls.external_process_id


async def first_event(trigger, limit: float = 30) -> dict:
    import asyncio

    async with asyncio.timeout(limit):
        return (await trigger.run().__anext__()).payload


def test_default_sets() -> None:
    assert api.TRAIN_STATUSES.classify("finished") is Phase.SUCCESS
    assert api.TRAIN_STATUSES.classify("running") is Phase.RUNNING
    assert api.TRAIN_STATUSES.classify("queued") is Phase.UNKNOWN  # waited on, with a warning
    strict = api.TRAIN_STATUSES.overridden(running=["running"])
    assert strict.classify("queued") is Phase.FAILURE
    assert strict.classify("waiting") is Phase.FAILURE  # no longer a known running status
    retrain = api.RETRAIN_STATUSES
    assert retrain.classify("job_broken", "Not found configuration_file.") is Phase.FAILURE
    assert retrain.classify("job_running", "still copying") is Phase.RUNNING  # known running: a note
    assert retrain.classify("job_broken") is Phase.UNKNOWN


async def test_running_statuses_make_any_other_status_fail_fast(connections: EmulatorProcess) -> None:
    epid = start_training(PredictionOneHook())
    started = time.monotonic()
    trigger = PredictionOneTrainTrigger(
        external_process_id=epid, conn_id="predone_default", poll_interval=0.1, timeout=60, running_statuses=["waiting"]
    )
    event = await first_event(trigger)
    assert event["status"] == "failure"
    assert event["job_status"] == "running"
    assert "none of the status sets" in event["message"]
    assert f"external_process_id={epid}" in event["message"]
    assert time.monotonic() - started < 45  # not the 60 s deadline (slack for a busy machine)


async def test_an_unknown_status_is_waited_on_and_warned_about_once(connections: EmulatorProcess, capsys) -> None:
    # The training fails; with "failed" left out of the failure set it is an unknown status.
    epid = start_training(PredictionOneHook(), target="no_such_column")
    capsys.readouterr()
    trigger = PredictionOneTrainTrigger(
        external_process_id=epid,
        conn_id="predone_default",
        poll_interval=0.1,
        deadline=time.time() + 3,
        failure_statuses=["error"],
    )
    event = await first_event(trigger)
    assert event["status"] == "timeout"
    assert event["job_status"] == "failed"
    warnings = [line for line in capsys.readouterr().out.splitlines() if "undocumented status" in line]
    assert len(warnings) == 1, warnings  # ~10 polls, one warning
    assert f"external_process_id={epid}" in warnings[0]
    assert "'failed'" in warnings[0]


async def test_a_retrain_message_with_an_unknown_status_is_a_failure(connections: EmulatorProcess) -> None:
    hook = PredictionOneHook()
    epid = start_training(hook)
    assert (
        await first_event(
            PredictionOneTrainTrigger(
                external_process_id=epid, conn_id="predone_default", poll_interval=0.1, timeout=30
            )
        )
    )["status"] == "success"
    model_id = hook.find_model_id("statuses")
    assert model_id is not None
    upload = hook.get_retrain_upload_url(model_id, "bad.csv")
    hook.upload_retrain_data(upload, model_id, files.resolve("train_data", DATA / "score.csv"))  # no target column
    trigger = PredictionOneRetrainTrigger(
        retrain_job_id=upload.retrain_job_id,
        model_id=model_id,
        conn_id="predone_default",
        poll_interval=0.1,
        timeout=30,
        failure_statuses=[],  # "job_failed" unknown: only its message tells
    )
    event = await first_event(trigger)
    assert event["status"] == "failure"
    assert event["job_status"] == "job_failed"
    assert f"model_id={model_id}" in event["message"]
    assert "purchased_premium" in event["message"]  # the vendor's message, naming the missing column


@pytest.mark.parametrize("bad", ["finished", [1], [""], 3])
def test_status_sets_are_checked_at_dag_parse(bad) -> None:
    from airflow_provider_predone.exceptions import InvalidInputError
    from airflow_provider_predone.operators.predone import PredictionOneTrainOperator

    with pytest.raises(InvalidInputError, match="running_statuses must be a list of status strings"):
        PredictionOneTrainOperator(task_id="t", train_data="x.csv", model_name="m", config=CONFIG, running_statuses=bad)


@pytest.mark.timeout(600)
def test_every_waiting_task_fails_fast_on_a_status_outside_its_sets(connections: EmulatorProcess, airflow_db) -> None:
    connections.configure(job_seconds=60.0)  # every task sees the job before it ends
    started = time.monotonic()
    result = run_dag(DAGS, "predone_statuses", data=str(DATA))
    assert result.states == {
        "train_strict_blocking": "failed",
        "train_strict_deferrable": "failed",
        "train_lenient_poke": "success",
        "train_lenient_deferrable": "success",
        "sense_strict_poke": "failed",
        "sense_strict_deferrable": "failed",
    }
    # Every wait has a 600 s timeout: a strict task that did not fail fast would take that long.
    # The lenient tasks wait out the 60 s jobs; the rest is slack for a busy 2-core machine.
    assert time.monotonic() - started < 400
