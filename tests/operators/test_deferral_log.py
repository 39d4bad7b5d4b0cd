"""
A deferring task says, once, when its trigger will check first and why (issue 26 point 5: every
deferral took 10 s whatever ``poll_interval`` said, and nothing told why).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import DATA

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.operators.predone import PredictionOneTrainOperator
from airflow_provider_predone.sensors.predone import PredictionOneTrainSensor
from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0
    from airflow.exceptions import TaskDeferred

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


def deferral_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The task's "Deferring" lines (Airflow's structlog writes task logs to the console here)."""
    captured = capsys.readouterr()
    return [line for line in (captured.out + captured.err).splitlines() if "Deferring: " in line]


def test_the_first_check_is_logged_once_with_its_reason(
    connections: EmulatorProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    connections.configure(job_seconds=60)
    hook = PredictionOneHook()
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "deferral-log", CONFIG)
    epid = urls.external_process_id
    monkeypatch.setenv("AIRFLOW__PREDONE__MIN_FIRST_POLL_DELAY", "10")

    def defer(poll_interval: float) -> list[str]:
        capsys.readouterr()
        operator: Any = PredictionOneTrainOperator(
            task_id="train", train_data="unused.csv", model_name="m", config=CONFIG, deferrable=True
        )
        operator.poll_interval = poll_interval
        trigger = PredictionOneTrainTrigger(
            external_process_id=epid, conn_id="predone_default", poll_interval=poll_interval, deadline=time.time() + 60
        )
        with pytest.raises(TaskDeferred):
            operator.wait_for({}, trigger)
        return deferral_lines(capsys)

    [short] = defer(2)
    assert "the first status check comes in 10 s" in short
    assert "not poll_interval=2 s: [predone] min_first_poll_delay is 10 s" in short
    assert "later checks come every 2 s" in short
    [long] = defer(30)
    assert "the first status check comes in 30 s" in long
    assert "one poll_interval after this check" in long

    capsys.readouterr()
    sensor = PredictionOneTrainSensor(
        task_id="wait", external_process_id=epid, deferrable=True, poke_interval=1, timeout=60
    )
    with pytest.raises(TaskDeferred):
        sensor.execute({})
    [poke] = deferral_lines(capsys)
    assert "not poke_interval=1 s: [predone] min_first_poll_delay is 10 s" in poke
