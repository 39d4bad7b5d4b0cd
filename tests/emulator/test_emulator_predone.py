"""The Prediction One API of the emulator, driven with plain ``requests`` as the vendor documents it."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import requests
from emulator_support import (
    CHURN_COLUMNS,
    CHURN_CONFIG,
    SECRET_KEY,
    TIMEOUT,
    PredoneClient,
    assert_bad_request,
    assert_error,
    decode_outputs,
    infer,
    poll,
)

from airflow_provider_predone.emulator import EmulatorProcess

ROWS = "\n".join(
    [
        ",".join(CHURN_COLUMNS[:-1]),
        "C90001,35,pro,28,2024-03-01,70.5",
        "C90002,61,free,1,2024-04-11,12.0",
        "C90003,44,basic,15,2024/05/20,41.25",
    ]
)


def _download_zip(url: str) -> zipfile.ZipFile:
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    return zipfile.ZipFile(io.BytesIO(response.content))


def _summary(archive: zipfile.ZipFile) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(archive.read("model_summary.json"))
    return summary


def test_training_follows_the_documented_sequence(emulator: EmulatorProcess, data: dict[str, Path]) -> None:
    base = f"{emulator.url}/v1/external"
    # T1: Get API Key with the secret key.
    answer = requests.get(
        f"{base}/api-key", params={"credential_type": "train"}, headers={"x-api-key": SECRET_KEY}, timeout=TIMEOUT
    ).json()
    end_date = datetime.strptime(answer["end_date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert end_date > datetime.now(UTC)
    headers = {"x-api-key": answer["api_key"]}

    # T2: upload URLs, then one PUT each (the column-info CSV is UTF-8 with BOM).
    urls = requests.get(f"{base}/data-sets/upload-url", params={"extension": "csv"}, headers=headers, timeout=TIMEOUT)
    urls.raise_for_status()
    process_id = urls.json()["external_process_id"]
    assert data["column_info"].read_bytes().startswith(b"\xef\xbb\xbf")
    for field, path in (
        ("learn_data_set_upload_url", data["learn"]),
        ("eval_data_set_upload_url", data["eval"]),
        ("column_info_upload_url", data["column_info"]),
    ):
        with path.open("rb") as source:
            assert requests.put(urls.json()[field], data=source, timeout=TIMEOUT).status_code == 200

    # T3: statistics of the training data.
    info = requests.get(
        f"{base}/data-sets/column-info", params={"external_process_id": process_id}, headers=headers, timeout=TIMEOUT
    ).json()
    assert info["raw_column_names"] == CHURN_COLUMNS
    assert info["trainingdata_row_count"] == 600
    assert len(info["raw_training_data"]) == 10
    assert info["raw_training_data"][0]["row_data"].startswith("C00000,")
    columns = {column["name"]: column for column in info["training_data_columns"]}
    assert [columns[name]["initial_data_type"] for name in ("age", "plan", "signup", "customer_id")] == [2, 1, 3, 1]
    assert columns["age"]["available_data_types"] == [1, 2]
    assert 18 <= columns["age"]["numerical_value"][0]["min_value"] <= columns["age"]["numerical_value"][0]["max_value"]
    assert sum(item["value"] for item in columns["plan"]["classify_value"]) == 600
    assert columns["customer_id"]["classify_value"] is None  # more than 30 distinct values
    assert columns["visits"]["missing_count"] > 0
    assert columns["visits"]["data_count"] + columns["visits"]["missing_count"] == 600
    assert all(column["cor_score"] is None for column in info["training_data_columns"])  # no target yet

    # T4: create the model (config values as strings, as in the vendor examples).
    body = {"external_process_id": process_id, "name": "churn", "config": {**CHURN_CONFIG, "cv": "0", "im": "false"}}
    created = requests.post(f"{base}/models", json=body, headers=headers, timeout=TIMEOUT)
    assert created.json() == {"external_process_id": process_id}

    # T5: poll until finished.
    seen: list[str] = []

    def status() -> dict[str, Any]:
        params = {"external_process_id": process_id}
        result: dict[str, Any] = requests.get(
            f"{base}/models/results", params=params, headers=headers, timeout=TIMEOUT
        ).json()
        seen.append(result["status"])
        return result

    final = poll(status, lambda r: r["status"] not in ("waiting", "running"))
    assert final["status"] == "finished", final
    assert set(seen) <= {"waiting", "running", "finished"}
    assert seen[0] in ("waiting", "running")
    assert final["created_datetime"] <= final["updated_datetime"]

    archive = _download_zip(final["result_url"])
    assert sorted(archive.namelist()) == ["column_info.csv", "model_summary.json", "validation_predictions.csv"]
    summary = _summary(archive)
    models = requests.get(f"{base}/models", headers=headers, timeout=TIMEOUT).json()
    assert models["metadata"] == {"offset": 0, "limit": 30, "total": 1}
    model = models["models"][0]
    assert summary["model_id"] == model["model_id"]
    assert (model["name"], model["version"], model["target_type"]) == ("churn", 1, "binary_classification")
    assert model["config"] == body["config"]
    assert model["is_api_option"] is False
    assert summary["format"] == "predone-emulator/1"
    assert (summary["version"], summary["name"], summary["target_column"]) == (1, "churn", "purchased")
    assert summary["algorithm"] == "naive_bayes"
    assert summary["trained_rows"] == 600
    assert summary["evaluation"] == {"method": "evaluation_file", "rows": 200}
    metrics = summary["metrics"]
    assert set(metrics) == {"accuracy", "auc", "precision", "recall", "f1", "log_loss"}
    assert 0.65 < metrics["accuracy"] <= 1
    assert 0.7 < metrics["auc"] <= 1
    assert all(0 <= metrics[name] <= 1 for name in ("precision", "recall", "f1"))
    assert 0 < metrics["log_loss"] < 1
    importance = summary["feature_importance"]
    assert {item["column"] for item in importance} == set(CHURN_COLUMNS) - {"purchased"}
    assert importance[0]["column"] in ("visits", "spend")
    assert abs(sum(item["importance"] for item in importance) - 1) < 1e-3

    column_info = archive.read("column_info.csv")
    assert column_info.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(column_info.decode("utf-8-sig").splitlines()))
    assert rows[0][:2] == ["column_name", "column_type"]
    assert [row[0] for row in rows[1:]] == CHURN_COLUMNS
    validation = list(csv.reader(archive.read("validation_predictions.csv").decode().splitlines()))
    assert validation[0] == ["row_number", "actual", "prediction", "probability"]
    assert len(validation) == 201
    assert all(row[2] in ("yes", "no") and 0 <= float(row[3]) <= 1 for row in validation[1:])


def test_holdout_regression_and_multiclass(predone: PredoneClient, data: dict[str, Path]) -> None:
    key = predone.key()
    regression = predone.train(key, data["learn"], {"tc": "spend", "tt": "regression"}, name="spend")
    multiclass = predone.train(key, data["learn"], {"tc": "plan", "tt": "multi_classification"}, name="plan")
    regression_summary = _summary(_download_zip(regression["result_url"]))
    assert regression_summary["algorithm"] == "ridge_regression"
    assert regression_summary["evaluation"] == {"method": "holdout", "rows": 120}
    assert regression_summary["trained_rows"] == 480
    assert set(regression_summary["metrics"]) == {"rmse", "mae", "r2"}
    assert regression_summary["metrics"]["r2"] > 0.8
    assert 0 < regression_summary["metrics"]["mae"] <= regression_summary["metrics"]["rmse"] < 10
    multiclass_summary = _summary(_download_zip(multiclass["result_url"]))
    assert set(multiclass_summary["metrics"]) == {"accuracy", "macro_f1", "log_loss"}
    assert 0 < multiclass_summary["metrics"]["accuracy"] <= 1

    # Once a training named a numeric target, the column info correlates with it.
    process_id = predone.upload_training_data(key, data["learn"])
    body = {"external_process_id": process_id, "name": "spend", "config": {"tc": "spend", "tt": "regression"}}
    predone.call("POST", "/models", key, json=body).raise_for_status()
    info = predone.call("GET", "/data-sets/column-info", key, params={"external_process_id": process_id}).json()
    correlations = {column["name"]: column["cor_score"] for column in info["training_data_columns"]}
    assert correlations["visits"] > 0.9
    assert correlations["plan"] is None
    assert correlations["spend"] is None


def test_column_info_types_and_statistics(predone: PredoneClient, tmp_path: Path) -> None:
    source = tmp_path / "日本語.csv"
    lines = ["年齢,都市,登録日時,一定,混在"]
    lines += [
        f"{20 + n},{'東京' if n % 3 else '大阪'},2024-01-{n + 1:02d} 09:{n:02d},x,{n if n % 2 else 'a'}"
        for n in range(12)
    ]
    lines += [",,,x,"]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    key = predone.key()
    process_id = predone.upload_training_data(key, source)
    info = predone.call("GET", "/data-sets/column-info", key, params={"external_process_id": process_id}).json()
    assert info["raw_column_names"] == ["年齢", "都市", "登録日時", "一定", "混在"]
    columns = {column["name"]: column for column in info["training_data_columns"]}
    assert [columns[name]["initial_data_type"] for name in info["raw_column_names"]] == [2, 1, 3, 1, 1]
    assert columns["年齢"]["numerical_value"] == [
        {"max_value": 31.0, "min_value": 20.0, "avg_value": 25.5, "median_value": 25.5}
    ]
    assert (columns["年齢"]["data_count"], columns["年齢"]["missing_count"], columns["年齢"]["unique_count"]) == (
        12,
        1,
        12,
    )
    assert sorted((item["name"], item["value"]) for item in columns["都市"]["classify_value"]) == [
        ("大阪", 4),
        ("東京", 8),
    ]
    assert columns["登録日時"]["available_data_types"] == [1, 3]
    assert info["useless_column_list"] == ["一定"]
    assert info["trainingdata_row_count"] == 13


def test_failed_trainings_say_why(predone: PredoneClient, data: dict[str, Path], tmp_path: Path) -> None:
    few = tmp_path / "few.csv"
    few.write_text("\n".join(data["learn"].read_text().splitlines()[:8]) + "\n")
    cases = {
        "missing target": (data["learn"], {"tc": "churned", "tt": "binary_classification", "tv": "yes"}, "'churned'"),
        "few rows": (few, CHURN_CONFIG, "at least 10"),
        "positive never occurs": (data["learn"], {**CHURN_CONFIG, "tv": "maybe"}, "'maybe'"),
        "regression on text": (data["learn"], {"tc": "plan", "tt": "regression"}, "not numeric"),
    }
    key = predone.key()
    started = {}
    for case, (path, config, _) in cases.items():
        process_id = predone.upload_training_data(key, path)
        body = {"external_process_id": process_id, "name": case, "config": config}
        predone.call("POST", "/models", key, json=body).raise_for_status()
        started[case] = process_id
    for case, process_id in started.items():
        final = poll(partial(predone.results, key, process_id), lambda r: r["status"] in ("finished", "failed"))
        assert final["status"] == "failed", case
        assert "result_url" not in final
        assert cases[case][2] in final["message"], final
        assert final["message"]


def test_single_class_message(predone: PredoneClient, tmp_path: Path) -> None:
    source = tmp_path / "one_class.csv"
    source.write_text("x,y\n" + "".join(f"{n},same\n" for n in range(20)))
    key = predone.key()
    final = predone.train(key, source, {"tc": "y", "tt": "multi_classification"})
    assert (final["status"], final["message"]) == ("failed", "the target column 'y' has a single class")


def test_retraining_with_a_csv_then_switch(
    emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int], data: dict[str, Path]
) -> None:
    key, model_id = trained
    classifier = predone.deploy(key, model_id)
    assert classifier["version"] == 1
    before = infer(classifier, ROWS)
    assert before.json()["version"] == 1

    retrain_key = predone.key("retrain", model_id)
    answer = predone.call("GET", "/retrain_jobs/upload_url", retrain_key, params={"filename": "retrain.csv"}).json()
    job_id = answer["retrain_job_id"]
    waiting = predone.call("GET", f"/retrain_jobs/{job_id}", retrain_key).json()
    assert waiting == {"status": "upload_waiting", "model_id": model_id, "metadata": {"retrain_job_id": job_id}}
    with data["retrain"].open("rb") as source:
        assert requests.put(answer["upload_url"], data=source, timeout=TIMEOUT).status_code == 200
    statuses: list[str] = []

    def status() -> dict[str, Any]:
        answer: dict[str, Any] = predone.call("GET", f"/retrain_jobs/{job_id}", retrain_key).json()
        statuses.append(answer["status"])
        return answer

    final = poll(status, lambda r: r["status"] in ("job_finished", "job_failed"))
    assert final["status"] == "job_finished", final
    assert set(statuses) <= {"job_waiting", "job_running", "job_finished"}
    assert (final["model_id"], final["metadata"]) == (model_id, {"retrain_job_id": job_id})
    summary = _summary(_download_zip(final["download_url"]))
    assert (summary["model_id"], summary["version"]) == (model_id, 2)
    assert summary["evaluation"]["method"] == "holdout"
    assert summary["previous"]["version"] == 1
    assert set(summary["previous"]["metrics"]) == set(summary["metrics"])
    assert emulator.state()["retrain_jobs_started"] == 1

    switched = predone.call("PUT", f"/retrain_jobs/{job_id}/update_model", retrain_key)
    assert switched.json() == {"metadata": {"retrain_job_id": job_id}}
    after = infer(classifier, ROWS)
    assert after.json()["version"] == 2
    assert predone.call("GET", "/models", key).json()["models"][0]["version"] == 2
    entry = predone.call("GET", f"/classifiers/{classifier['classifier_id']}", key).json()["classifiers"][0]
    assert entry["version"] == 2
    # Switching again answers the same and changes nothing.
    again = predone.call("PUT", f"/retrain_jobs/{job_id}/update_model", retrain_key)
    assert again.json() == {"metadata": {"retrain_job_id": job_id}}
    assert emulator.state()["model_switches"] == 1


def test_retraining_with_a_zip_of_train_and_eval_files(
    predone: PredoneClient, trained: tuple[str, int], data: dict[str, Path], tmp_path: Path
) -> None:
    _, model_id = trained
    archive_path = tmp_path / "再学習データ.zip"
    with zipfile.ZipFile(archive_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(data["retrain"], arcname="train_src/学習データ.csv")
        archive.write(data["retrain_eval"], arcname="eval_src/評価データ.csv")
    _, _, final = predone.retrain(model_id, archive_path, archive_path.name)
    assert final["status"] == "job_finished", final
    summary = _summary(_download_zip(final["download_url"]))
    assert summary["evaluation"] == {"method": "evaluation_file", "rows": 200}
    assert summary["trained_rows"] == 600
    assert summary["previous"]["version"] == 1


def test_bad_retraining_uploads_fail_the_job(
    predone: PredoneClient, trained: tuple[str, int], data: dict[str, Path], tmp_path: Path
) -> None:
    _, model_id = trained
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip file")
    no_train_src = tmp_path / "no_train_src.zip"
    with zipfile.ZipFile(no_train_src, "w") as archive:
        archive.write(data["retrain"], arcname="data/retrain.csv")
    no_target = tmp_path / "no_target.csv"
    no_target.write_text("a,b\n" + "".join(f"{n},{n * 2}\n" for n in range(30)))
    expected = {broken: "unreadable", no_train_src: "train_src", no_target: "'purchased'"}
    started = {path: predone.start_retrain(model_id, path, path.name) for path in expected}
    for path, words in expected.items():
        final = predone.wait_retrain(*started[path])
        assert final["status"] == "job_failed", final
        assert words in final["message"]
        assert "download_url" not in final


def test_prediction_api_lifecycle(emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int]) -> None:
    key, model_id = trained
    rules = [{"source": "0.0.0.0/0", "order": "allow", "priority": 1}]
    created = predone.call("POST", "/classifiers", key, json={"model_id": model_id, "rules": rules}).json()
    assert set(created) == {"classifier_id", "api_key", "version"}
    classifier_id = created["classifier_id"]
    entry = predone.call("GET", f"/classifiers/{classifier_id}", key).json()["classifiers"][0]
    assert entry["status"] == "building"
    assert entry["url"] == f"{emulator.url}/v1/inference/{classifier_id}"
    assert (entry["model_id"], entry["api_key"], entry["rules"], entry["active"]) == (
        model_id,
        created["api_key"],
        rules,
        True,
    )
    assert infer(entry, ROWS).json()["message"] == "status is not running (status: building)"
    entry = poll(
        lambda: predone.call("GET", f"/classifiers/{classifier_id}", key).json()["classifiers"][0],
        lambda e: e["status"] == "running",
    )
    listed = predone.call("GET", "/classifiers", key).json()["classifiers"]
    assert [item["classifier_id"] for item in listed] == [classifier_id]
    assert predone.call("GET", "/models", key).json()["models"][0]["is_api_option"] is True

    stopped = predone.call("PATCH", f"/classifiers/{classifier_id}", key, json={"active": False}).json()
    assert (stopped["classifier"]["status"], stopped["classifier"]["active"]) == ("stopped", False)
    assert_error(
        infer(entry, ROWS), 503, 5031030101, "SERVICE_UNAVAILABLE_ERROR", "status is not running (status: stopped)"
    )
    new_rules = [{"source": "127.0.0.1/32", "order": "allow", "priority": 5}]
    resumed = predone.call("PATCH", f"/classifiers/{classifier_id}", key, json={"active": True, "rules": new_rules})
    assert resumed.json()["classifier"]["status"] == "running"
    assert resumed.json()["classifier"]["rules"] == new_rules
    assert infer(entry, ROWS).status_code == 200

    assert predone.call("DELETE", f"/classifiers/{classifier_id}", key).json() == {}
    assert predone.call("GET", "/classifiers", key).json() == {"classifiers": []}
    assert_bad_request(predone.call("GET", f"/classifiers/{classifier_id}", key), "Not found classifier.")
    assert_error(infer(entry, ROWS), 400, 4001030101, "NOT_FOUND_CLASSIFIER", "Not found classifier")
    assert emulator.state()["classifiers"] == 1


def test_inference_options(emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int]) -> None:
    key, model_id = trained
    classifier = predone.deploy(key, model_id)

    plain = decode_outputs(infer(classifier, ROWS))
    assert list(plain) == ["prediction_valid.csv"]
    valid = plain["prediction_valid.csv"]
    assert valid[0] == ["row_number", "prediction", "probability"]
    assert [row[0] for row in valid[1:]] == ["1", "2", "3"]
    assert valid[1][1] == "yes"  # many visits on the pro plan
    assert valid[2][1] == "no"  # one visit on the free plan
    assert float(valid[1][2]) > 0.5 > float(valid[2][2])

    everything = decode_outputs(infer(classifier, ROWS, ar=True, ad=True, nc=False, nr=False, pc="customer_id"))
    valid = everything["prediction_valid.csv"]
    assert valid[0] == ["customer_id", "row_number", "prediction", "probability", *CHURN_COLUMNS[:-1]]
    assert valid[1][:2] == ["C90001", "1"]
    assert valid[1][4:] == ROWS.splitlines()[1].split(",")
    analysis = everything["prediction_analysis.csv"]
    assert analysis[0] == ["row_number"] + [f"reason_{n}{s}" for n in (1, 2, 3) for s in ("", "_effect")]
    first_reason, first_effect = analysis[1][1], analysis[1][2]
    column, _, value = first_reason.partition("=")
    assert column in CHURN_COLUMNS
    assert value == dict(zip(CHURN_COLUMNS, ROWS.splitlines()[1].split(","), strict=False))[column]
    float(first_effect)

    bare = decode_outputs(infer(classifier, ROWS, nc=True, nr=True, ar=True))
    assert bare["prediction_valid.csv"][0] == ["probability"]
    assert bare["prediction_analysis.csv"][0][0] == "reason_1"
    assert emulator.state()["predictions"] == 9


def test_regression_and_multiclass_inference(predone: PredoneClient, data: dict[str, Path]) -> None:
    key = predone.key()
    predone.train(key, data["learn"], {"tc": "spend", "tt": "regression"}, name="spend")
    regression = predone.deploy(key, predone.newest_model_id(key))
    predone.train(key, data["learn"], {"tc": "plan", "tt": "multi_classification"}, name="plan")
    multiclass = predone.deploy(key, predone.newest_model_id(key))
    rows = "customer_id,age,plan,visits,signup,purchased\nC1,30,pro,20,2024-02-02,yes\n"
    valid = decode_outputs(infer(regression, rows, nc=True))["prediction_valid.csv"]
    assert valid[0] == ["row_number", "prediction"]
    assert 35 < float(valid[1][1]) < 65  # about 10 + 2 * visits
    rows = "customer_id,age,visits,signup,spend,purchased\nC1,30,20,2024-02-02,50.0,yes\n"
    valid = decode_outputs(infer(multiclass, rows))["prediction_valid.csv"]
    assert valid[0] == ["row_number", "prediction", "probability_basic", "probability_free", "probability_pro"]
    assert abs(sum(float(cell) for cell in valid[1][2:]) - 1) < 1e-4


def test_data_sets_and_models_can_be_listed_and_deleted(
    predone: PredoneClient, data: dict[str, Path], trained: tuple[str, int]
) -> None:
    key, model_id = trained
    data_sets = predone.call("GET", "/data-sets", key).json()
    assert data_sets["metadata"]["total"] == 1
    entry = data_sets["data_sets"][0]
    assert (entry["extension"], entry["column_count"], entry["data_count"]) == ("csv", 7, 600)
    assert entry["data_size"] == data["learn"].stat().st_size
    download = requests.get(entry["download_url"], timeout=TIMEOUT)
    assert download.content == data["learn"].read_bytes()

    process_id = predone.upload_training_data(key, data["learn"], data["eval"])
    listed = predone.call("GET", "/data-sets", key, params={"offset": 0, "limit": 2}).json()
    assert listed["metadata"] == {"offset": 0, "limit": 2, "total": 3}
    newest = listed["data_sets"][0]
    assert newest["data_count"] == 200
    assert predone.call("DELETE", f"/data-sets/{newest['data_set_id']}", key).json() == {}
    learn_id = listed["data_sets"][1]["data_set_id"]
    assert predone.call("DELETE", f"/data-sets/{learn_id}", key).json() == {}
    assert predone.call("GET", "/data-sets", key).json()["metadata"]["total"] == 1
    assert_bad_request(predone.call("DELETE", f"/data-sets/{learn_id}", key), "Not found data set.")
    body = {"external_process_id": process_id, "name": "gone", "config": CHURN_CONFIG}
    assert_bad_request(predone.call("POST", "/models", key, json=body), "Not found data set.")

    predone.deploy(key, model_id)
    retrain_key = predone.key("retrain", model_id)
    assert predone.call("DELETE", f"/models/{model_id}", key).json() == {}
    assert predone.call("GET", "/models", key).json()["models"] == []
    assert predone.call("GET", "/classifiers", key).json() == {"classifiers": []}
    assert_bad_request(predone.call("DELETE", f"/models/{model_id}", key), "This model may be deleted.")
    response = predone.call("GET", "/retrain_jobs/upload_url", retrain_key, params={"filename": "a.csv"})
    assert_bad_request(response, "This model may be deleted.")


def test_a_repeated_create_model_trains_again(
    emulator: EmulatorProcess, predone: PredoneClient, data: dict[str, Path]
) -> None:
    key = predone.key()
    process_id = predone.upload_training_data(key, data["learn"])
    body = {"external_process_id": process_id, "name": "twice", "config": CHURN_CONFIG}
    for _ in range(2):
        assert predone.call("POST", "/models", key, json=body).status_code == 200
    assert emulator.state()["trainings_started"] == 2
    assert predone.call("GET", "/models", key).json()["metadata"]["total"] == 2


def test_finish_jobs_ends_every_running_job_now_with_its_outcome(
    emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int], data: dict[str, Path]
) -> None:
    _, model_id = trained
    emulator.configure(job_seconds=3600)
    key = predone.key()
    process_id = predone.upload_training_data(key, data["learn"])
    body = {"external_process_id": process_id, "name": "long", "config": CHURN_CONFIG}
    predone.call("POST", "/models", key, json=body).raise_for_status()
    retrain_key, job_id = predone.start_retrain(model_id, data["retrain"], "retrain.csv")
    assert predone.results(key, process_id)["status"] in ("waiting", "running")
    assert emulator.finish_jobs() == 2  # the finished training of `trained` is not counted
    assert poll(lambda: predone.results(key, process_id), lambda r: r["status"] != "running")["status"] == "finished"
    assert predone.wait_retrain(retrain_key, job_id)["status"] == "job_finished"
    assert emulator.finish_jobs() == 0


def test_inference_latency_holds_concurrent_requests_side_by_side(
    emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int]
) -> None:
    """Four requests at once each take the latency (not less), and the service holds all four
    at the same time, as the counter a client's concurrency is checked with says."""
    key, model_id = trained
    classifier = predone.deploy(key, model_id)
    emulator.configure(inference_latency_ms=400)

    def timed() -> tuple[float, int]:
        started = time.monotonic()
        answer = infer(classifier, ROWS)
        return time.monotonic() - started, answer.status_code

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: timed(), range(4)))
    assert all(status == 200 for _, status in results)
    assert min(seconds for seconds, _ in results) >= 0.4
    assert emulator.state()["max_inferences_in_flight"] == 4
