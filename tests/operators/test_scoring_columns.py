"""
A scoring input that lacks a model column is refused after one request, naming the column, and
the refusal is not retried (issue 26: an input without ``promo`` sent about ten requests per
try, three tries).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import DATA, wait_for

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import NOT_RETRIED, BadRequestError, PermanentError
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.operators.predone import PredictionOneBatchPredictOperator

CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}


@pytest.fixture
def classifier_id(connections: EmulatorProcess) -> str:
    hook = PredictionOneHook()
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "columns", CONFIG)
    wait_for("the training", lambda: hook.get_train_status(urls.external_process_id).status == "finished")
    model_id = hook.find_model_id("columns")
    assert model_id is not None
    created = hook.create_prediction_api(model_id).classifier_id
    wait_for("the prediction API", lambda: hook.get_prediction_api(created).status == "running")
    return created


def without_columns(target: Path, *columns: str) -> Path:
    with (DATA / "score.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if name not in columns]
    with target.open("w", newline="") as f:
        csv.writer(f).writerows([[row[i] for i in keep] for row in rows])
    return target


def score(classifier_id: str, input_data: Path, output: Path) -> object:
    return PredictionOneBatchPredictOperator(
        task_id="score",
        classifier_id=classifier_id,
        input_data=str(input_data),
        output_data=str(output),
        concurrency=8,
    ).execute({})  # type: ignore[arg-type]


def test_a_missing_column_is_named_after_one_request_and_not_retried(
    classifier_id: str, connections: EmulatorProcess, tmp_path: Path
) -> None:
    # Answers take a while, so requests sent together would be in flight together.
    connections.configure(inference_latency_ms=50)
    source = without_columns(tmp_path / "no_plan.csv", "plan", "device")
    with pytest.raises(BadRequestError) as refused:
        score(classifier_id, source, tmp_path / "scored.csv")
    message = str(refused.value)
    assert "lacks the model's column(s) ['plan', 'device']" in message or (
        "lacks the model's column(s) ['device', 'plan']" in message
    ), message
    assert "so no other row was sent" in message
    assert message.count(NOT_RETRIED) == 1
    assert isinstance(refused.value, PermanentError)
    state = connections.state()
    assert state["max_inferences_in_flight"] == 1, state  # the first row alone, not one per slot
    assert not (tmp_path / "scored.csv").exists()


def test_an_input_the_model_accepts_is_scored_whole(
    classifier_id: str, connections: EmulatorProcess, tmp_path: Path
) -> None:
    result = score(classifier_id, DATA / "score.csv", tmp_path / "scored.csv")
    rows = sum(1 for _ in (DATA / "score.csv").open()) - 1
    assert isinstance(result, dict)
    assert result["rows_in"] == result["rows_scored"] == rows
    with (tmp_path / "scored.csv").open(newline="") as f:
        numbers = [int(row["row_number"]) for row in csv.DictReader(f)]
    assert numbers == list(range(1, rows + 1))  # the checked first row is written once, in order
