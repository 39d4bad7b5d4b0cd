"""The vendor's own Python examples (shared/seeds), run against the emulator.

Each snippet is the vendor's text with only the host, keys, ids and file paths substituted;
the typos that stop a snippet from running are fixed and marked ``# fixed:``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from emulator_support import CHURN_CONFIG, PredoneClient, infer, poll

from airflow_provider_predone.emulator import EmulatorProcess

VENDOR_HOSTS = (
    "https://developer-api.predictionone.sony.biz",
    "https://developer-api.easy-predictive-analytics.sony.com",
)

# 001: Train Status Check API (Prediction One, Japanese page), example 1.
TRAIN_STATUS = """
import requests
import time
import zipfile

api_url = 'https://developer-api.predictionone.sony.biz/v1/external/models/results'
api_key = 'YOUR_API_KEY'
# Train Data Upload API実行時に取得したexternal_process_id
external_process_id = 'YOUR_EXTERNAL_PROCESS_ID'

headers = {'x-api-key': api_key}

# request
params = {'external_process_id': external_process_id}

while True:
  response = requests.get(api_url, params=params, headers=headers)
  response_json = response.json()
  status = response_json['status']
  if status == 'finished':
    break
  time.sleep(30)

result_url = response_json['result_url']

# 結果ファイルのダウンロード
result_data = requests.get(result_url).content
with open('result.zip' ,mode='wb') as f:
  f.write(result_data)

# 結果ファイルの確認
zf = zipfile.ZipFile('result.zip')
"""

# 002: Retrain Data Upload API, example 1 (both variants: a CSV alone, a zip with an eval file).
# The two variants repeat each other in the vendor's text, which is kept as it is.
# jscpd:ignore-start
RETRAIN_UPLOAD = """
import requests
import tempfile
import zipfile
import subprocess

api_url = 'https://developer-api.predictionone.sony.biz/v1/external/retrain_jobs/upload_url'
api_key = 'YOUR_API_KEY'

headers = {'x-api-key': api_key}


# 学習ファイルのみの場合
re_train_data_file_path = 'YOUR_RE_TRAIN_DATA_FILE_PATH'
re_train_data_file_name = 'YOUR_RE_TRAIN_DATA_FILE_NAME'

# request
params = {'filename': re_train_data_file_name}
response = requests.get(api_url, params=params, headers=headers)
response_json = response.json()
retrain_job_id = response_json['retrain_job_id']
upload_url = response_json['upload_url']

# upload_file
with open(re_train_data_file_path, 'rb') as f:
  data = f.read()
res = requests.put(upload_url, data=data)

# 学習ファイルと評価ファイルを使用する場合
re_train_zip_file_name = 'YOUR_RE_TRAIN_ZIP_FILE_NAME'
re_train_data_file_name = 'YOUR_RE_TRAIN_DATA_FILE_NAME'
re_train_data_file_path = 'YOUR_RE_TRAIN_DATA_FILE_PATH'
re_train_eval_data_file_name = 'YOUR_RE_TRAIN_EVAL_DATA_FILE_NAME'
re_train_eval_data_file_path = 'YOUR_RE_TRAIN_EVAL_DATA_FILE_PATH'

\"\"\"
dir_name
  |   |--train_src
  |   |   |--train_data.csv
  |   |--eval_src
  |   |   |--eval_data.csv
\"\"\"

with tempfile.TemporaryDirectory() as temp:
  zip_file_path = f'{temp}/{re_train_zip_file_name}'
  with zipfile.ZipFile(zip_file_path, 'w', compression=zipfile.ZIP_DEFLATED) as zf:  # fixed: tab indentation
    zf.write(re_train_data_file_path, arcname=f'train_src/{re_train_data_file_name}')
    zf.write(re_train_eval_data_file_path, arcname=f'eval_src/{re_train_eval_data_file_name}')

  # request
  params = {'filename': re_train_zip_file_name}
  response = requests.get(api_url, params=params, headers=headers)
  response_json = response.json()
  retrain_job_id = response_json['retrain_job_id']
  upload_url = response_json['upload_url']

  # upload_file
  with open(zip_file_path, 'rb') as f:
    data = f.read()
  res = requests.put(upload_url, data=data)
  # fixed: removed `ret = subprocess.run(cmd, ...)`, a leftover that runs an undefined `cmd`
"""
# jscpd:ignore-end

# 000: Retrain Status Check API (Easy Predictive Analytics, English page), example 1. The page lost
# the indentation; it is restored.
RETRAIN_STATUS = """
import requests
retrain_job_id = 'YOUR_RETRAIN_JOB_ID'
# fixed: the URL used {YOUR_RETRAIN_JOB_ID}, a name that is not defined
api_url = f'https://developer-api.easy-predictive-analytics.sony.com/v1/external/retrain_jobs/{retrain_job_id}'
api_key = 'YOUR_API_KEY'
headers = {
'x-api-key': api_key
}
response = requests.get(api_url, headers=headers)
response_json = response.json()
status = response_json['status']
download_url = None
result_file_path = 'retrain_result.zip'  # fixed: was never defined
while True:
    if response_json['status'] == 'job_finished':
        download_url = response_json['download_url']
        break  # fixed: the loop had no way out
if download_url:
    response = requests.get(download_url)
    with open(result_file_path, 'wb') as f:  # fixed: 'w' for bytes
        f.write(response.content)  # fixed: print(response.content) wrote nothing to the file
"""

# 003: Retrain Model Switch API, example 1.
MODEL_SWITCH = """
import requests

retrain_job_id = 'YOUR_RETRAIN_JOB_ID'
# fixed: the URL used {YOUR_RETRAIN_JOB_ID}, a name that is not defined
api_url = f'https://developer-api.predictionone.sony.biz/v1/external/retrain_jobs/{retrain_job_id}/update_model'
api_key = 'YOUR_API_KEY'

headers = {
    'x-api-key': api_key
}
response = requests.put(api_url, headers=headers)
"""


def run_seed(snippet: str, url: str, values: dict[str, str]) -> dict[str, Any]:
    """Run a snippet with the vendor host replaced by ``url`` and the placeholders by ``values``;
    answers the snippet's variables."""
    for host in VENDOR_HOSTS:
        snippet = snippet.replace(host, url)
    for placeholder, value in values.items():
        snippet = snippet.replace(f"'{placeholder}'", repr(value))
    namespace: dict[str, Any] = {"__name__": "vendor_example"}
    exec(compile(snippet, "vendor_example.py", "exec"), namespace)  # noqa: S102 - the vendor's examples
    return namespace


def test_the_vendor_examples_run_against_the_emulator(
    emulator: EmulatorProcess,
    predone: PredoneClient,
    data: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    key = predone.key()
    process_id = predone.upload_training_data(key, data["learn"])
    body = {"external_process_id": process_id, "name": "seed", "config": CHURN_CONFIG}
    predone.call("POST", "/models", key, json=body).raise_for_status()
    # The example sleeps 30 s between polls: it starts once the training has finished.
    poll(lambda: predone.results(key, process_id), lambda r: r["status"] == "finished")
    trained = run_seed(TRAIN_STATUS, emulator.url, {"YOUR_API_KEY": key, "YOUR_EXTERNAL_PROCESS_ID": process_id})
    assert isinstance(trained["zf"], zipfile.ZipFile)
    assert "model_summary.json" in trained["zf"].namelist()
    trained["zf"].close()

    model_id = predone.newest_model_id(key)
    classifier = predone.deploy(key, model_id)
    retrain_key = predone.key("retrain", model_id)
    uploaded = run_seed(
        RETRAIN_UPLOAD,
        emulator.url,
        {
            "YOUR_API_KEY": retrain_key,
            "YOUR_RE_TRAIN_DATA_FILE_PATH": str(data["retrain"]),
            "YOUR_RE_TRAIN_DATA_FILE_NAME": "再学習データ.csv",
            "YOUR_RE_TRAIN_ZIP_FILE_NAME": "再学習データ.zip",
            "YOUR_RE_TRAIN_EVAL_DATA_FILE_NAME": "評価データ.csv",
            "YOUR_RE_TRAIN_EVAL_DATA_FILE_PATH": str(data["retrain_eval"]),
        },
    )
    assert uploaded["res"].status_code == 200
    assert emulator.state()["retrain_jobs_started"] == 2
    job_id = uploaded["retrain_job_id"]  # the zip's job, the last one
    poll(
        lambda: predone.call("GET", f"/retrain_jobs/{job_id}", retrain_key).json(),
        lambda r: r["status"] == "job_finished",
    )

    values = {"YOUR_API_KEY": retrain_key, "YOUR_RETRAIN_JOB_ID": job_id}
    checked = run_seed(RETRAIN_STATUS, emulator.url, values)
    assert checked["status"] == "job_finished"
    with zipfile.ZipFile(tmp_path / "retrain_result.zip") as archive:
        assert "model_summary.json" in archive.namelist()

    switched = run_seed(MODEL_SWITCH, emulator.url, values)
    assert switched["response"].json() == {"metadata": {"retrain_job_id": job_id}}
    row = "customer_id,age,plan,visits,signup,spend\nC1,30,pro,20,2024-02-02,50\n"
    assert infer(classifier, row).json()["version"] == 3  # the CSV job made version 2, the zip's 3
