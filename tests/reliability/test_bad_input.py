"""
Bad input fails before anything is uploaded, with a message naming the field or file and
what is allowed. Every case also checks, on the emulator, that not one byte was uploaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, EMULATOR_OPTIONS, REPO, predone_connection, run_dag

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import (
    AuthenticationError,
    InvalidInputError,
    JobNotFinishedError,
    PredictionApiNotRunningError,
)
from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook
from airflow_provider_predone.operators.aitems import AitemsTrainOperator
from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneCreatePredictionApiOperator,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
)

DAGS = REPO / "tests" / "dags"
CONFIG = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
REGRESSION = {"tc": "age", "tt": "regression"}


@pytest.fixture(scope="module")
def world(emulator_process: EmulatorProcess, tmp_path_factory) -> dict[str, Any]:
    """Files for every case, a trained model, a stopped prediction API, a retrain job not uploaded."""
    emulator_process.reset()
    emulator_process.configure(fault_rate=0.0, **EMULATOR_OPTIONS)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator_process.url))
    API_KEYS.clear()
    root = tmp_path_factory.mktemp("bad-input")
    header = (DATA / "train.csv").read_text().splitlines()[0]
    paths = {
        "empty": root / "empty.csv",
        "header_only": root / "header_only.csv",
        "binary": root / "binary.csv",
        "shift_jis": root / "shift_jis.csv",
        "one_column": root / "one_column.csv",
        "duplicates": root / "duplicates.csv",
        "text": root / "train.txt",
        "no_target": root / "no_target.csv",
        "dir.csv": root / "dir.csv",
        "tv_absent_late": root / "tv_absent_late.csv",
        "no_positive": root / "no_positive.csv",
    }
    paths["empty"].write_bytes(b"")
    paths["header_only"].write_text(header + "\n")
    paths["binary"].write_bytes(b"PK\x03\x04\x00\x00binary")
    paths["shift_jis"].write_bytes("顧客,購入\n太郎,はい\n".encode("shift_jis"))
    paths["one_column"].write_text("a;b;c\n1;2;3\n")
    paths["duplicates"].write_text("a,b,a\n1,2,3\n")
    paths["text"].write_text(header + "\n")
    paths["no_target"].write_text("customer_id,age\nC1,30\n")
    paths["dir.csv"].mkdir()
    # New data for the binary model below (tv "yes") in which nobody bought: its retraining could only fail.
    paths["no_positive"].write_text((DATA / "new_month.csv").read_text().replace(",yes\n", ",no\n"))
    # 2 MiB of rows, none labelled 1 (1.0 would count, as the service compares numbers): only a
    # pass over the whole file, not its header, can tell.
    paths["tv_absent_late"].write_text("id,x,label\n" + "".join(f"{i},{i % 7},{i % 3 * 2}\n" for i in range(180_000)))
    hook = PredictionOneHook()
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="setup")
    hook.create_model(urls.external_process_id, "bad-input", CONFIG)
    import time

    deadline = time.monotonic() + 30
    while hook.get_train_status(urls.external_process_id).status != "finished" and time.monotonic() < deadline:
        time.sleep(0.1)
    model_id = hook.find_model_id("bad-input")
    classifier_id = hook.create_prediction_api(model_id).classifier_id
    while hook.get_prediction_api(classifier_id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    hook.update_prediction_api(classifier_id, active=False)
    job = hook.get_retrain_upload_url(model_id, "never_uploaded.csv")
    yield {
        "paths": paths,
        "root": root,
        "model_id": model_id,
        "classifier_id": classifier_id,
        "retrain_job_id": job.retrain_job_id,
        "emulator": emulator_process,
        "monkeypatch": monkeypatch,
    }
    monkeypatch.undo()


def train(**overrides: Any) -> Callable[[dict[str, Any]], Any]:
    def build(world: dict[str, Any]) -> Any:
        arguments = {"train_data": str(DATA / "train.csv"), "model_name": "m", "config": CONFIG, **overrides}
        return PredictionOneTrainOperator(task_id="t", **_resolve(arguments, world))

    return build


def retrain(**overrides: Any) -> Callable[[dict[str, Any]], Any]:
    def build(world: dict[str, Any]) -> Any:
        arguments = {"model_id": world["model_id"], "train_data": str(DATA / "new_month.csv"), **overrides}
        return PredictionOneRetrainOperator(task_id="t", **_resolve(arguments, world))

    return build


def operator(cls: type, **arguments: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda world: cls(task_id="t", **_resolve(arguments, world))


def _resolve(arguments: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    """``"@name"`` stands for a file of the fixture; ``"$key"`` for an id of the fixture."""
    out = {}
    for key, value in arguments.items():
        if isinstance(value, str) and value.startswith("@"):
            value = str(world["paths"][value[1:]])
        elif isinstance(value, str) and value.startswith("$"):
            value = world[value[1:]]
        out[key] = value
    return out


CASES: list[tuple[str, Callable[[dict[str, Any]], Any], type[Exception], str]] = [
    (
        "missing file",
        train(train_data="/nonexistent/train.csv"),
        InvalidInputError,
        "train_data: /nonexistent/train.csv does not exist",
    ),
    ("no data given", train(train_data=""), InvalidInputError, "train_data is required"),
    ("empty file", train(train_data="@empty"), InvalidInputError, "empty.csv is empty"),
    ("a directory", train(train_data="@dir.csv"), InvalidInputError, "is a directory"),
    (
        "unreadable storage URL",
        train(train_data="nosuchfs://bucket/train.csv"),
        InvalidInputError,
        "train_data: 'nosuchfs://bucket/train.csv' is not a usable object storage URL",
    ),
    (
        "wrong extension",
        train(train_data="@text"),
        InvalidInputError,
        "must be a file ending in .csv (got 'train.txt')",
    ),
    ("path-like name", train(train_data="/etc/passwd"), InvalidInputError, "must be a file ending in .csv"),
    ("binary content", train(train_data="@binary"), InvalidInputError, "is not a CSV text file"),
    ("not UTF-8", train(train_data="@shift_jis"), InvalidInputError, "is not UTF-8 text"),
    ("Shift-JIS without encoding=", train(train_data="@shift_jis"), InvalidInputError, "pass encoding='cp932'"),
    ("unknown encoding", train(encoding="klingon"), InvalidInputError, "encoding: unknown encoding 'klingon'"),
    ("retrain encoding", retrain(encoding="base64"), InvalidInputError, "encoding: 'base64' is not a text encoding"),
    ("wrong encoding", train(train_data="@shift_jis", encoding="ascii"), InvalidInputError, "is not ascii text"),
    (
        "scoring encoding",
        operator(
            PredictionOneBatchPredictOperator,
            classifier_id="$classifier_id",
            input_data=str(DATA / "score.csv"),
            output_data="/tmp/x.csv",
            encoding="",
        ),
        InvalidInputError,
        "encoding must be the name of a text encoding",
    ),
    (
        "tv never occurs in the target column",
        train(config={**CONFIG, "tv": "Yes!"}),
        InvalidInputError,
        "config: tv='Yes!' (the positive value) never occurs in the target column tc='purchased_premium' of train_data",
    ),
    (
        "tv never occurs, quoting the values that do",
        train(config={**CONFIG, "tv": "true"}),
        InvalidInputError,
        "values that do occur include ['yes', 'no']",
    ),
    (
        "tv found only after the first megabyte is not enough: it must occur",
        train(train_data="@tv_absent_late", config={"tc": "label", "tt": "binary_classification", "tv": "1"}),
        InvalidInputError,
        "tv='1' (the positive value) never occurs in the target column tc='label'",
    ),
    ("header only", train(train_data="@header_only"), InvalidInputError, "has a header but no data rows"),
    ("not comma separated", train(train_data="@one_column"), InvalidInputError, "has a single column"),
    ("repeated columns", train(train_data="@duplicates"), InvalidInputError, "repeats column name(s) ['a']"),
    (
        "target column absent",
        train(config={**CONFIG, "tc": "churned"}),
        InvalidInputError,
        "has no column for tc='churned'",
    ),
    (
        "time column absent",
        train(config={**REGRESSION, "tsm": "true", "tsc": "when", "tsf": 1, "tst": 2}),
        InvalidInputError,
        "tsc='when'",
    ),
    ("eval data lacks the target", train(eval_data="@no_target"), InvalidInputError, "eval_data: "),
    (
        "column_info type",
        train(column_info={"age": "integer"}),
        InvalidInputError,
        "column 'age' has type 'integer'; allowed types: ['string', 'float', 'date']",
    ),
    ("column_info column", train(column_info={"zzz": "string"}), InvalidInputError, "column_info['zzz']"),
    ("model name", train(model_name="  "), InvalidInputError, "model_name must be a non-empty string"),
    ("tt", train(config={"tc": "age", "tt": "ranking"}), InvalidInputError, "'tt' (prediction type) must be one of"),
    (
        "tv missing",
        train(config={"tc": "purchased_premium", "tt": "binary_classification"}),
        InvalidInputError,
        "'tv' (the positive value) is required",
    ),
    ("tv not binary", train(config={**REGRESSION, "tv": "1"}), InvalidInputError, "'tv' is only allowed"),
    ("cv", train(config={**CONFIG, "cv": "-3"}), InvalidInputError, "'cv' must be an integer >= -1"),
    (
        "im on regression",
        train(config={**REGRESSION, "im": "true"}),
        InvalidInputError,
        "only allowed for classification",
    ),
    (
        "tsm on classification",
        train(config={**CONFIG, "tsm": "true", "tsc": "signup_date", "tsf": 1, "tst": 1}),
        InvalidInputError,
        "only allowed when 'tt' is regression",
    ),
    (
        "tst before tsf",
        train(config={**REGRESSION, "tsm": "true", "tsc": "signup_date", "tsf": 3, "tst": 2}),
        InvalidInputError,
        "'tst' must be >= 'tsf'",
    ),
    (
        "tsu",
        train(config={**REGRESSION, "tsm": "true", "tsc": "signup_date", "tsf": 1, "tst": 1, "tsu": "fortnight"}),
        InvalidInputError,
        "'tsu' (time unit) must be one of",
    ),
    (
        "zero poll interval",
        train(poll_interval=0),
        InvalidInputError,
        "poll_interval must be a positive number of seconds, got 0",
    ),
    ("negative timeout", train(timeout=-5), InvalidInputError, "timeout must be a positive number of seconds, got -5"),
    (
        "model id not a number",
        retrain(model_id="abc"),
        InvalidInputError,
        "model_id must be a positive integer id, got 'abc'",
    ),
    ("model id zero", retrain(model_id=0), InvalidInputError, "model_id must be a positive integer id"),
    ("retrain eval columns", retrain(eval_data="@no_target"), InvalidInputError, "lacks the training data's column(s)"),
    (
        "retrain data without the model's tv",
        retrain(train_data="@no_positive"),
        InvalidInputError,
        "config: tv='yes' (the positive value) never occurs in the target column tc='purchased_premium'",
    ),
    (
        "retrain path-like name",
        retrain(upload_filename="../escape.csv"),
        InvalidInputError,
        "upload_filename must be a plain file name ending in .csv",
    ),
    (
        "retrain zip name",
        retrain(eval_data=str(DATA / "new_month_eval.csv"), upload_filename="data.csv"),
        InvalidInputError,
        "ending in .zip",
    ),
    (
        "retrain job id",
        operator(PredictionOneSwitchModelOperator, retrain_job_id="a/../b", model_id="$model_id"),
        InvalidInputError,
        "retrain_job_id must be a non-empty id",
    ),
    (
        "switch before the job finished",
        operator(PredictionOneSwitchModelOperator, retrain_job_id="$retrain_job_id", model_id="$model_id"),
        JobNotFinishedError,
        "not finished",
    ),
    (
        "gate not callable",
        operator(
            PredictionOneSwitchModelOperator,
            retrain_job_id="$retrain_job_id",
            model_id="$model_id",
            quality_gate="auc > 0.8",
        ),
        InvalidInputError,
        "quality_gate must be a callable",
    ),
    (
        "ip rule CIDR",
        operator(
            PredictionOneCreatePredictionApiOperator,
            model_id="$model_id",
            ip_rules=[{"source": "10.0.0.300/8", "order": "allow"}],
        ),
        InvalidInputError,
        "ip_rules[0].source must be a CIDR",
    ),
    (
        "ip rule order",
        operator(
            PredictionOneCreatePredictionApiOperator,
            model_id="$model_id",
            ip_rules=[{"source": "0.0.0.0/0", "order": "permit"}],
        ),
        InvalidInputError,
        "ip_rules[0].order must be 'allow' or 'deny'",
    ),
    (
        "no ip rules",
        operator(PredictionOneCreatePredictionApiOperator, model_id="$model_id", ip_rules=[]),
        InvalidInputError,
        "ip_rules must be a non-empty list",
    ),
    (
        "scoring concurrency",
        operator(
            PredictionOneBatchPredictOperator,
            classifier_id="$classifier_id",
            input_data=str(DATA / "score.csv"),
            output_data="/tmp/x.csv",
            concurrency=0,
        ),
        InvalidInputError,
        "concurrency must be an integer from 1 to 256",
    ),
    (
        "scoring id column",
        operator(
            PredictionOneBatchPredictOperator,
            classifier_id="$classifier_id",
            input_data=str(DATA / "score.csv"),
            output_data="/tmp/x.csv",
            id_column="member_no",
        ),
        InvalidInputError,
        "id_column='member_no'",
    ),
    (
        "scoring output is a directory",
        operator(
            PredictionOneBatchPredictOperator,
            classifier_id="$classifier_id",
            input_data=str(DATA / "score.csv"),
            output_data="@dir.csv",
        ),
        InvalidInputError,
        "output_data: ",
    ),
    (
        "scoring a stopped prediction API",
        operator(
            PredictionOneBatchPredictOperator,
            classifier_id="$classifier_id",
            input_data=str(DATA / "score.csv"),
            output_data="/tmp/x.csv",
        ),
        PredictionApiNotRunningError,
        "is 'stopped', not running",
    ),
    (
        "classifier id",
        operator(
            PredictionOneBatchPredictOperator,
            classifier_id="",
            input_data=str(DATA / "score.csv"),
            output_data="/tmp/x.csv",
        ),
        InvalidInputError,
        "classifier_id must be a non-empty id",
    ),
    (
        "aitems train types",
        operator(AitemsTrainOperator, service_id="s1", train_types=["bestsellers"]),
        InvalidInputError,
        "train_types: ['bestsellers'] not allowed",
    ),
    (
        "aitems hp config",
        operator(AitemsTrainOperator, service_id="s1", train_types=["pop"], hp_config={"item_top_n": -1}),
        InvalidInputError,
        "hp_config.item_top_n must be an integer from 1000 to 500000",
    ),
    (
        "aitems service id",
        operator(AitemsTrainOperator, service_id="a?b", train_types=["pop"]),
        InvalidInputError,
        "service_id must be a non-empty id",
    ),
]


@pytest.mark.parametrize(("name", "build", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_before_any_upload(world, name, build, error, message) -> None:
    emulator = world["emulator"]
    before = emulator.state()
    with pytest.raises(error, match=re.escape(message)):  # at DAG parse (building the task) or in execute
        build(world).execute({})
    after = emulator.state()
    assert after["bytes_uploaded"] == before["bytes_uploaded"]
    assert after["uploads"] == before["uploads"]
    assert after["trainings_started"] == before["trainings_started"]
    assert after["retrain_jobs_started"] == before["retrain_jobs_started"]


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("kind", ["wrong", "expired"])
def test_wrong_or_expired_keys_fail_before_any_upload(world, airflow_db, kind: str) -> None:
    emulator = world["emulator"]
    key = "not-a-key" if kind == "wrong" else PredictionOneHook().get_api_key("train")
    if kind == "expired":
        emulator.expire_keys()
    world["monkeypatch"].setenv(
        "AIRFLOW_CONN_DIRECT_KEY",
        json.dumps({"conn_type": "predone", "host": emulator.url, "extra": {"train_api_key": key}}),
    )
    before = emulator.state()["bytes_uploaded"]
    expected = "Not_found_credential." if kind == "wrong" else "Inactive_credential."
    with pytest.raises(AuthenticationError, match=re.escape(expected)):
        PredictionOneHook("direct_key").get_upload_urls()
    # The operator, run as Airflow runs it, fails at that first call: nothing is uploaded.
    assert run_dag(DAGS, "predone_bad_key").states == {"train": "failed"}
    assert emulator.state()["bytes_uploaded"] == before


def test_japanese_and_spaced_file_names_are_fine(tmp_path: Path) -> None:
    named = tmp_path / "新しい 月.csv"
    named.write_bytes((DATA / "new_month.csv").read_bytes())
    assert files.read_csv_header(files.resolve("train_data", named))[0] == "customer_id"
