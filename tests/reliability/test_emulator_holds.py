"""
The emulator's upload holds (test support for ``test_airflow_cluster.py``) do what they claim,
with a real client process killed while its upload is held:

* held *before* the body is read: a client that dies meanwhile uploads nothing, no job
  starts, and the upload URL still takes one upload;
* held *after* the upload completed: the job has started before the client hears anything;
  the URL takes no second upload (412).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests
from helpers import DATA, wait_for

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.protocol import predone as api

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
PUT = "import requests, sys; requests.put(sys.argv[1], data=open(sys.argv[2], 'rb').read(), timeout=120)"


@pytest.fixture
def retrain_upload(connections: EmulatorProcess) -> tuple[PredictionOneHook, int, api.RetrainUpload]:
    hook = PredictionOneHook()
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "holds", CONFIG)
    wait_for("the training to finish", lambda: hook.get_train_status(urls.external_process_id).status == "finished")
    model_id = hook.find_model_id("holds")
    assert model_id is not None
    return hook, model_id, hook.get_retrain_upload_url(model_id, "new_month.csv")


def kill_while_held(emulator: EmulatorProcess, setting: str, url: str) -> dict[str, int]:
    """PUT ``url`` from a child process, kill it while the emulator holds the PUT, release."""
    emulator.configure(**{setting: 60})
    child = subprocess.Popen([sys.executable, "-c", PUT, url, str(DATA / "new_month.csv")])
    try:
        wait_for("the upload to be held", lambda: emulator.state()["held_requests"] == 1, interval=0.02)
        held = emulator.state()
    finally:
        child.kill()
        child.wait()
        time.sleep(0.3)  # the emulator sees the connection close
        emulator.configure(**{setting: 0})  # (the session's emulator is shared: never leave a hold on)
    wait_for("the hold to end", lambda: emulator.state()["held_requests"] == 0, interval=0.02)
    return held


def test_a_client_killed_before_its_upload_was_read_uploads_nothing(
    connections: EmulatorProcess, retrain_upload: tuple[PredictionOneHook, int, api.RetrainUpload]
) -> None:
    hook, model_id, upload = retrain_upload
    before = connections.state()
    held = kill_while_held(connections, "retrain_upload_hold_before", upload.upload_url)
    assert (held["uploads"], held["retrain_jobs_started"]) == (before["uploads"], 0)
    after = connections.state()
    assert (after["uploads"], after["retrain_jobs_started"]) == (before["uploads"], 0)
    assert hook.get_retrain_status(upload.retrain_job_id, model_id).status == "upload_waiting"
    # The URL still takes its one upload, which starts the job.
    hook.upload_retrain_data(upload, model_id, files.resolve("train_data", DATA / "new_month.csv"))
    assert connections.state()["retrain_jobs_started"] == 1


def test_a_client_killed_after_its_upload_landed_never_heard_but_the_job_runs(
    connections: EmulatorProcess, retrain_upload: tuple[PredictionOneHook, int, api.RetrainUpload]
) -> None:
    hook, model_id, upload = retrain_upload
    before = connections.state()
    held = kill_while_held(connections, "retrain_upload_hold_after", upload.upload_url)
    assert (held["uploads"], held["retrain_jobs_started"]) == (before["uploads"] + 1, 1)  # before any answer
    assert hook.get_retrain_status(upload.retrain_job_id, model_id).status != "upload_waiting"
    second = requests.put(upload.upload_url, data=b"a,b\n1,2\n", timeout=10)
    assert second.status_code == 412
    assert connections.state()["retrain_jobs_started"] == 1


def test_holds_are_off_by_default_and_refuse_bad_values(connections: EmulatorProcess) -> None:
    config = connections.configure()
    assert (config["retrain_upload_hold_before"], config["retrain_upload_hold_after"]) == (0.0, 0.0)
    response = requests.post(f"{connections.url}/_emulator/config", json={"retrain_upload_hold_after": -1}, timeout=10)
    assert (response.status_code, response.json()) == (400, {"error": "retrain_upload_hold_after is out of range"})
