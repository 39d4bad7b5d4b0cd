"""
OpenLineage: the lifecycle DAG run by ``airflow dags test`` with the OpenLineage provider and
its file transport, against the emulator; the events it writes are read back and checked.

A subprocess: the provider decides at plugin load whether it is enabled, so the transport must
be configured before Airflow starts, in a process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, REPO, airflow_home_environment, predone_connection

from airflow_provider_predone.emulator import EmulatorProcess

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SERVICE = "predone://prediction_one"


def _environment(home: Path, emulator: EmulatorProcess, events: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(airflow_home_environment(home))
    env["AIRFLOW_CONN_PREDONE_DEFAULT"] = predone_connection(emulator.url, retry_wait_seconds=0.05)
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps({"type": "file", "log_file_path": str(events), "append": True})
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "predone-tests"
    return env


def _complete_events(events: Path) -> dict[str, dict[str, Any]]:
    """The COMPLETE event of each task, by task id (the job name is ``<dag_id>.<task_id>``)."""
    found = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("eventType") == "COMPLETE" and "." in event["job"]["name"]:
            found[event["job"]["name"].split(".", 1)[1]] = event
    return found


def _datasets(event: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {f"{d['namespace']}/{d['name']}": d for d in event[kind]}


@pytest.mark.timeout(600)
def test_lifecycle_lineage_from_data_to_scored_file(emulator: EmulatorProcess, tmp_path: Path) -> None:
    events, output = tmp_path / "events.jsonl", tmp_path / "output"
    env = _environment(tmp_path / "home", emulator, events)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300, cwd=REPO)
    run = subprocess.run(
        [AIRFLOW, "dags", "test", "predone_lifecycle", "--conf", json.dumps({"output_dir": str(output)})],
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    complete = _complete_events(events)
    assert {"train", "deploy", "score_before", "retrain", "switch", "score_after"} <= set(complete)

    # train: the training and evaluation CSVs (columns, rows) -> the model with its metrics
    train = complete["train"]
    inputs = _datasets(train, "inputs")
    train_csv = inputs[f"file/{DATA / 'train.csv'}"]
    header = (DATA / "train.csv").read_text().splitlines()[0].split(",")
    assert [f["name"] for f in train_csv["facets"]["schema"]["fields"]] == header
    rows = len((DATA / "train.csv").read_text().splitlines()) - 1
    assert train_csv["inputFacets"]["inputStatistics"]["rowCount"] == rows
    assert f"file/{DATA / 'eval.csv'}" in inputs
    model = _datasets(train, "outputs")[f"{SERVICE}/models/1"]
    assert model["facets"]["predone_model"]["metrics"]["auc"] > 0.5
    assert train["run"]["facets"]["predone_job"]["details"]["external_process_id"]

    # deploy: the model -> the prediction API
    deploy = complete["deploy"]
    assert set(_datasets(deploy, "inputs")) == {f"{SERVICE}/models/1"}
    [api] = _datasets(deploy, "outputs")
    assert api.startswith(f"{SERVICE}/prediction_apis/")

    # score: the prediction API and the input CSV -> the scored file (columns, rows)
    score = complete["score_after"]
    assert set(_datasets(score, "inputs")) == {api, f"file/{DATA / 'score.csv'}"}
    scored = _datasets(score, "outputs")[f"file/{output / 'predictions_after.csv'}"]
    assert scored["outputFacets"]["outputStatistics"]["rowCount"] == 500
    assert "row_number" in [f["name"] for f in scored["facets"]["schema"]["fields"]]

    # retrain: the new month's data -> the model, with both sets of metrics and the job id
    retrain = complete["retrain"]
    assert f"file/{DATA / 'new_month.csv'}" in _datasets(retrain, "inputs")
    retrained = _datasets(retrain, "outputs")[f"{SERVICE}/models/1"]["facets"]["predone_model"]
    job_id = retrain["run"]["facets"]["predone_job"]["details"]["retrain_job_id"]
    assert retrained["retrain_job_id"] == job_id
    assert retrained["metrics"]["auc"] > retrained["previous_metrics"]["auc"]

    # switch: the retrained model -> what the prediction APIs serve, with the gate's verdict
    switch = complete["switch"]
    assert _datasets(switch, "inputs")[f"{SERVICE}/models/1"]["facets"]["predone_model"]["retrain_job_id"] == job_id
    assert set(_datasets(switch, "outputs")) == {f"{SERVICE}/models/1/serving"}
    details = switch["run"]["facets"]["predone_job"]["details"]
    assert details["switched"] is True
    assert details["quality_gate"]["verdict"] == "accepted"


@pytest.mark.timeout(600)
def test_operators_work_and_nothing_imports_openlineage_without_the_provider(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    # `airflow dags test` in an interpreter where OpenLineage cannot be imported, as when the extra
    # is not installed (the provider's package stays: Airflow's provider discovery reads it).
    blocked = ("openlineage", "airflow.providers.openlineage.extractors", "airflow.providers.openlineage.plugins")
    code = (
        "import atexit, sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "atexit.register(lambda: print('IMPORTED', sorted(m for m in sys.modules if m.startswith('openlineage')"
        " and sys.modules[m] is not None)))\n"
        "from airflow.__main__ import main\n"
        "sys.argv = ['airflow', 'dags', 'test', 'predone_train', '--conf', sys.argv[1]]\n"
        "main()\n"
    )
    env = _environment(tmp_path / "home", emulator, tmp_path / "events.jsonl")
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300, cwd=REPO)
    conf = json.dumps({"result_dir": str(tmp_path / "result")})
    run = subprocess.run(
        [sys.executable, "-c", code, conf], env=env, capture_output=True, text=True, timeout=480, cwd=REPO
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "IMPORTED []" in run.stdout
    assert emulator.state()["trainings_started"] == 1
    assert list((tmp_path / "result").glob("*/model_summary.json"))  # the task ran to its end
    assert not (tmp_path / "events.jsonl").exists()  # nothing was emitted


def test_object_storage_and_local_files_as_openlineage_datasets(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_provider_predone.lineage import input_file, location_name

    attach(protocol="memory", fs=MemoryFileSystem())  # fsspec's in-process filesystem
    stored = ObjectStoragePath("memory://bucket/in/train.csv")
    stored.write_bytes((DATA / "train.csv").read_bytes())
    assert location_name(stored) == ("memory://bucket", "in/train.csv")
    assert location_name("s3://bucket/month/scores.csv") == ("s3://bucket", "month/scores.csv")
    assert location_name(f"file://{tmp_path}/a.csv") == ("file", f"{tmp_path}/a.csv")
    dataset = input_file(stored)
    header = (DATA / "train.csv").read_text().splitlines()[0].split(",")
    assert [f.name for f in dataset.facets["schema"].fields] == header
    assert dataset.inputFacets == {}  # object storage is not downloaded again to count rows
    local = input_file(DATA / "train.csv")
    assert (local.namespace, local.name) == ("file", str(DATA / "train.csv"))
    assert local.inputFacets["inputStatistics"].rowCount == len((DATA / "train.csv").read_text().splitlines()) - 1
