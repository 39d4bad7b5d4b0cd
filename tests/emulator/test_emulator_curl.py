"""The training and retraining flows driven with ``curl``, as in the vendor's command-line examples."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from emulator_support import CHURN_CONFIG, SECRET_KEY, PredoneClient

from airflow_provider_predone.emulator import EmulatorProcess

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(*arguments: str, cwd: Path) -> None:
    subprocess.run(["curl", "--silent", "--show-error", "--fail", *arguments], cwd=cwd, check=True, timeout=60)


def read_json(path: Path) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return answer


def test_training_and_retraining_with_curl(
    emulator: EmulatorProcess, predone: PredoneClient, data: dict[str, Path], tmp_path: Path
) -> None:
    base = f"{emulator.url}/v1/external"
    for name in ("learn", "eval", "column_info", "retrain"):
        shutil.copy(data[name], tmp_path / data[name].name)

    curl(
        "-o",
        "key.json",
        "-H",
        f"x-api-key:{SECRET_KEY}",
        "-X",
        "GET",
        "-G",
        f"{base}/api-key",
        "--data-urlencode",
        "credential_type=train",
        cwd=tmp_path,
    )
    key = read_json(tmp_path / "key.json")["api_key"]
    curl(
        "-o",
        "urls.json",
        "-H",
        f"x-api-key:{key}",
        "-X",
        "GET",
        "-G",
        f"{base}/data-sets/upload-url",
        "--data-urlencode",
        "extension=csv",
        cwd=tmp_path,
    )
    urls = read_json(tmp_path / "urls.json")
    curl("-T", "learn.csv", urls["learn_data_set_upload_url"], cwd=tmp_path)
    curl("-T", "eval.csv", urls["eval_data_set_upload_url"], cwd=tmp_path)
    curl("-T", "column_info.csv", urls["column_info_upload_url"], cwd=tmp_path)

    # The id goes through a parameter file, with the newline an editor leaves at its end.
    (tmp_path / "params.txt").write_text(urls["external_process_id"] + "\n", encoding="utf-8")
    curl(
        "-o",
        "info.json",
        "-H",
        f"x-api-key:{key}",
        "-X",
        "GET",
        "-G",
        f"{base}/data-sets/column-info",
        "--data-urlencode",
        "external_process_id@params.txt",
        cwd=tmp_path,
    )
    assert read_json(tmp_path / "info.json")["trainingdata_row_count"] == 600
    body = {"external_process_id": urls["external_process_id"], "name": "curl-churn", "config": CHURN_CONFIG}
    (tmp_path / "body.json").write_text(json.dumps(body), encoding="utf-8")
    curl(
        "-o",
        "created.json",
        "-H",
        f"x-api-key:{key}",
        "-H",
        "Content-Type: application/json",
        "-X",
        "POST",
        "--data-binary",
        "@body.json",
        f"{base}/models",
        cwd=tmp_path,
    )
    assert read_json(tmp_path / "created.json") == {"external_process_id": urls["external_process_id"]}

    deadline = time.monotonic() + 20
    while True:
        curl(
            "-o",
            "response.json",
            "-H",
            f"x-api-key:{key}",
            "-X",
            "GET",
            "-G",
            f"{base}/models/results",
            "--data-urlencode",
            "external_process_id@params.txt",
            cwd=tmp_path,
        )
        response = read_json(tmp_path / "response.json")
        if response["status"] == "finished" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response["status"] == "finished"
    curl("-o", "result.zip", response["result_url"], cwd=tmp_path)
    with zipfile.ZipFile(tmp_path / "result.zip") as archive:
        summary = json.loads(archive.read("model_summary.json"))
    assert summary["metrics"]["auc"] > 0.7

    # Retraining: the file name (Japanese) goes through param.txt saved as UTF-8.
    model_id = summary["model_id"]
    retrain_key = predone.key("retrain", model_id)
    japanese = tmp_path / "再学習用データ.csv"
    shutil.copy(tmp_path / "retrain.csv", japanese)
    (tmp_path / "param.txt").write_text(japanese.name, encoding="utf-8")
    curl(
        "-o",
        "response.json",
        "-H",
        f"x-api-key:{retrain_key}",
        "-X",
        "GET",
        "-G",
        f"{base}/retrain_jobs/upload_url",
        "--data-urlencode",
        "filename@param.txt",
        cwd=tmp_path,
    )
    upload = read_json(tmp_path / "response.json")
    curl("-X", "PUT", "--upload-file", japanese.name, upload["upload_url"], cwd=tmp_path)
    job_id = upload["retrain_job_id"]
    deadline = time.monotonic() + 20
    while True:
        curl(
            "-o",
            "response.json",
            "-H",
            f"x-api-key:{retrain_key}",
            "-X",
            "GET",
            "-G",
            f"{base}/retrain_jobs/{job_id}",
            cwd=tmp_path,
        )
        status = read_json(tmp_path / "response.json")
        if status["status"] == "job_finished" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status["status"] == "job_finished", status
    curl("-o", "retrain_result.zip", status["download_url"], cwd=tmp_path)
    with zipfile.ZipFile(tmp_path / "retrain_result.zip") as archive:
        assert json.loads(archive.read("model_summary.json"))["version"] == 2

    predone.deploy(key, model_id)
    curl(
        "-o",
        "switch.json",
        "-H",
        f"x-api-key:{retrain_key}",
        "-X",
        "PUT",
        f"{base}/retrain_jobs/{job_id}/update_model",
        cwd=tmp_path,
    )
    assert read_json(tmp_path / "switch.json") == {"metadata": {"retrain_job_id": job_id}}
    assert emulator.state()["model_switches"] == 1
