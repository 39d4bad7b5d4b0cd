"""Prediction One operators and sensors, run by ``dag.test()`` against the emulator."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import DATA, REPO, run_dag

from airflow_provider_predone.emulator import EmulatorProcess

DAGS = REPO / "tests" / "dags"


@pytest.fixture(scope="module")
def operators_run(emulator_process: EmulatorProcess, airflow_db, tmp_path_factory, request):
    """One run of the operators DAG (about 20 s), shared by the assertions below."""
    from helpers import EMULATOR_OPTIONS, predone_connection

    from airflow_provider_predone.hooks.predone import API_KEYS

    emulator_process.reset()
    emulator_process.configure(fault_rate=0.0, **EMULATOR_OPTIONS)
    API_KEYS.clear()
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator_process.url))
    out = tmp_path_factory.mktemp("operators-out")
    try:
        result = run_dag(DAGS, "predone_operators", data=str(DATA), out=str(out))
        yield result, out, emulator_process.state()
    finally:
        monkeypatch.undo()


def test_every_task_ends_as_expected(operators_run) -> None:
    result, _, _ = operators_run
    expected = {task: "success" for task in result.states}
    expected["switch_refused"] = "failed"
    assert result.states == expected


def test_training_results(operators_run) -> None:
    result, out, _ = operators_run
    trained = result.xcom("train_deferrable")
    assert isinstance(trained["model_id"], int)
    assert trained["status"] == "finished"
    assert trained["metrics"]["auc"] > 0.6
    assert Path(trained["result_path"]) == out / "train" / trained["external_process_id"]
    assert (Path(trained["result_path"]) / "model_summary.json").is_file()
    assert result.xcom("train_deferrable", key="model_id") == trained["model_id"]  # multiple_outputs
    blocking = result.xcom("train_blocking")
    assert blocking["model_id"] != trained["model_id"]
    assert "result_path" not in blocking  # unknown fields are left out (no result_dir given)
    no_wait = result.xcom("train_no_wait")
    assert no_wait == {"external_process_id": no_wait["external_process_id"], "status": "started"}
    assert result.xcom("sense_train_deferrable")["job_status"] == "finished"


def test_scoring_output_is_in_input_order_with_reasons(operators_run) -> None:
    result, out, _ = operators_run
    scored = result.xcom("score")
    assert scored["rows_in"] == scored["rows_scored"] == 500
    with (out / "scores.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (DATA / "score.csv").open(newline="") as handle:
        inputs = list(csv.DictReader(handle))
    assert [r["row_number"] for r in rows] == [str(i) for i in range(1, 501)]
    assert [r["customer_id"] for r in rows] == [r["customer_id"] for r in inputs]
    assert {r["prediction"] for r in rows} <= {"yes", "no"}
    reasons = (out / "scores_reasons.csv").read_text().splitlines()
    assert reasons[0].startswith("row_number,")
    assert len(reasons) == 501


def test_retrain_gate_and_switch(operators_run) -> None:
    result, _, state = operators_run
    retrained = result.xcom("retrain_no_wait")
    assert retrained["status"] == "started"
    switched = result.xcom("switch")
    assert switched["switched"] is True
    assert switched["metrics"]["auc"] >= switched["previous_metrics"]["auc"]
    assert state["retrain_jobs_started"] == 1
    assert state["model_switches"] == 1  # the refused gate switched nothing


def test_listing_and_clean_up(operators_run) -> None:
    result, _, _ = operators_run
    assert {m["name"] for m in result.xcom("list_models")} == {"ops", "ops_blocking", "ops_no_wait"}
    apis = result.xcom("list_prediction_apis")
    assert len(apis) == 2
    assert all("api_key" not in a for a in apis)
    assert all("download_url" not in d for d in result.xcom("list_data_sets"))
    assert result.xcom("delete_model")["deleted"] is True
    assert result.xcom("delete_model_again")["deleted"] is False


def test_each_remote_job_was_started_once(operators_run) -> None:
    _, _, state = operators_run
    assert state["trainings_started"] == 3
    assert state["classifiers"] == 2
