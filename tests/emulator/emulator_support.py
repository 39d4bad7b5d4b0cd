"""Helpers of the emulator tests: generated data and thin clients of the vendor APIs.

The clients only save typing: every call is a plain ``requests`` call of a documented
endpoint, and the tests that check a documented sequence spell it out themselves.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

SECRET_KEY = "predone-demo-secret-key"
AITEMS_ACCESS_KEY = "demo-aitems-access-key"
AITEMS_SECRET_KEY = "demo-aitems-secret-key"
CHURN_CONFIG = {"tc": "purchased", "tt": "binary_classification", "tv": "yes"}
CHURN_COLUMNS = ["customer_id", "age", "plan", "visits", "signup", "spend", "purchased"]
TIMEOUT = 30
T = TypeVar("T")


def write_churn_csv(path: Path, rows: int, seed: int, *, drift: float = 0.0, bom: bool = False) -> Path:
    """A churn-like binary data set whose target depends on ``visits`` and ``plan``.

    :param drift: shifts the relation, so that a retraining on drifted data differs.
    """
    generator = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow(CHURN_COLUMNS)
        for number in range(rows):
            plan = generator.choice(["free", "basic", "pro"])
            visits = generator.randint(0, 30)
            score = 0.25 * visits - 3.5 + (1.5 if plan == "pro" else 0.0) + drift
            purchased = "yes" if generator.random() < 1 / (1 + 2.718281828**-score) else "no"
            writer.writerow(
                [
                    f"C{number:05d}",
                    generator.randint(18, 80),
                    plan,
                    visits if generator.random() > 0.03 else "",
                    f"2024-{generator.randint(1, 12):02d}-{generator.randint(1, 28):02d}",
                    round(10 + 2 * visits + generator.gauss(0, 5), 2),
                    purchased,
                ]
            )
    return path


def write_column_info(path: Path) -> Path:
    """The column-info CSV of the churn data, UTF-8 with BOM as in the vendor example."""
    with path.open("w", newline="", encoding="utf-8-sig") as sink:
        writer = csv.writer(sink)
        writer.writerow(["column_name", "column_type"])
        for name in CHURN_COLUMNS:
            writer.writerow([name, "float" if name in ("age", "visits", "spend") else "string"])
    return path


def poll(call: Callable[[], T], done: Callable[[T], bool], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Call until ``done(result)``; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = call()
        if done(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"still not done after {timeout} s: {result!r}")
        time.sleep(interval)


def assert_error(response: requests.Response, status: int, code: int, error: str, message: str) -> None:
    """A Prediction One error answer, exactly."""
    assert response.status_code == status, response.text
    assert response.json() == {"code": code, "error": error, "message": message}


def assert_bad_request(response: requests.Response, message: str) -> None:
    assert_error(response, 400, 4001000204, "PREDA_EXTERNAL_BAD_REQUEST", message)


def get_api_key(url: str, secret: str | None = SECRET_KEY, **params: Any) -> requests.Response:
    """Get API Key (T1) at the emulator ``url``; a train key unless ``params`` say otherwise."""
    headers = {"x-api-key": secret} if secret else {}
    query = {"credential_type": "train", **params}
    return requests.get(f"{url}/v1/external/api-key", params=query, headers=headers, timeout=TIMEOUT)


@dataclass
class PredoneClient:
    """Plain ``requests`` calls of the Prediction One API of one emulator."""

    url: str

    @property
    def base(self) -> str:
        return f"{self.url}/v1/external"

    def key(self, kind: str = "train", model_id: int | None = None) -> str:
        params: dict[str, Any] = {} if model_id is None else {"model_id": model_id}
        response = get_api_key(self.url, credential_type=kind, **params)
        response.raise_for_status()
        return str(response.json()["api_key"])

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> requests.Response:
        url, headers = f"{self.base}{path}", {"x-api-key": key}
        return requests.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)

    def upload_training_data(self, key: str, learn: Path, evaluation: Path | None = None) -> str:
        urls = self.call("GET", "/data-sets/upload-url", key, params={"extension": "csv"}).json()
        for name, path in (("learn_data_set_upload_url", learn), ("eval_data_set_upload_url", evaluation)):
            if path is not None:
                with path.open("rb") as source:
                    requests.put(urls[name], data=source, timeout=TIMEOUT).raise_for_status()
        return str(urls["external_process_id"])

    def results(self, key: str, process_id: str) -> dict[str, Any]:
        response = self.call("GET", "/models/results", key, params={"external_process_id": process_id})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def train(
        self, key: str, learn: Path, config: dict[str, Any], evaluation: Path | None = None, name: str = "churn"
    ) -> dict[str, Any]:
        """Upload, train and wait; answers the final status (``finished`` or ``failed``)."""
        process_id = self.upload_training_data(key, learn, evaluation)
        body = {"external_process_id": process_id, "name": name, "config": config}
        self.call("POST", "/models", key, json=body).raise_for_status()
        return poll(lambda: self.results(key, process_id), lambda r: r["status"] in ("finished", "failed"))

    def newest_model_id(self, key: str) -> int:
        return int(self.call("GET", "/models", key).json()["models"][0]["model_id"])

    def deploy(self, key: str, model_id: int, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Create a prediction API and wait until it runs; answers its ``GET`` entry."""
        body = {"model_id": model_id, "rules": rules or [{"source": "0.0.0.0/0", "order": "allow", "priority": 1}]}
        created = self.call("POST", "/classifiers", key, json=body)
        created.raise_for_status()
        classifier_id = created.json()["classifier_id"]
        return poll(
            lambda: self.call("GET", f"/classifiers/{classifier_id}", key).json()["classifiers"][0],
            lambda entry: entry["status"] == "running",
        )

    def start_retrain(self, model_id: int, path: Path, filename: str) -> tuple[str, str]:
        """Upload retraining data (which starts the job); answers (retrain key, job id)."""
        key = self.key("retrain", model_id)
        answer = self.call("GET", "/retrain_jobs/upload_url", key, params={"filename": filename}).json()
        with path.open("rb") as source:
            requests.put(answer["upload_url"], data=source, timeout=TIMEOUT).raise_for_status()
        return key, str(answer["retrain_job_id"])

    def wait_retrain(self, key: str, job_id: str) -> dict[str, Any]:
        """Poll a retraining until it ends; answers its final status."""
        return poll(
            lambda: self.call("GET", f"/retrain_jobs/{job_id}", key).json(),
            lambda r: r["status"] in ("job_finished", "job_failed"),
        )

    def retrain(self, model_id: int, path: Path, filename: str) -> tuple[str, str, dict[str, Any]]:
        """Upload retraining data and wait for the job; answers (retrain key, job id, final status)."""
        key, job_id = self.start_retrain(model_id, path, filename)
        return key, job_id, self.wait_retrain(key, job_id)


def infer(classifier: dict[str, Any], csv_text: str, **options: Any) -> requests.Response:
    """``POST`` the classifier's url with ``pr`` and the given options (``ar=True``, ``pc="id"``...)."""
    inputs = [{"name": "pr", "type": "csv", "data": base64.b64encode(csv_text.encode()).decode()}]
    for name, value in options.items():
        inputs.append({"name": name, "type": "string" if name == "pc" else "bool", "data": value})
    return requests.post(
        classifier["url"],
        json={"inputs": inputs},
        headers={"x-api-key": classifier["api_key"], "content-type": "application/json; charset=utf-8"},
        timeout=TIMEOUT,
    )


def decode_outputs(response: requests.Response) -> dict[str, list[list[str]]]:
    """The answer's output CSV files, by name, as rows."""
    response.raise_for_status()
    return {
        output["name"]: list(csv.reader(base64.b64decode(output["data"]).decode().splitlines()))
        for output in response.json()["outputs"]
    }


@dataclass
class AitemsClient:
    """AiTEMS requests signed with API Gateway signature v2 (computed here, independently)."""

    url: str
    access_key: str = AITEMS_ACCESS_KEY
    secret_key: str = AITEMS_SECRET_KEY

    def sign(self, method: str, uri: str, timestamp: str) -> str:
        message = method + " " + uri + "\n" + timestamp + "\n" + self.access_key
        digest = hmac.new(self.secret_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def request(
        self, method: str, uri: str, body: Any = None, *, skew_ms: int = 0, signature: str | None = None
    ) -> requests.Response:
        """``uri`` is the path from ``/api/v1`` on, with its query string, exactly as sent."""
        timestamp = str(int(time.time() * 1000) + skew_ms)
        headers = {
            "x-ncp-apigw-timestamp": timestamp,
            "x-ncp-iam-access-key": self.access_key,
            "x-ncp-apigw-signature-v2": signature or self.sign(method, uri, timestamp),
            "Content-Type": "application/json",
        }
        return requests.request(method, self.url + uri, json=body, headers=headers, timeout=TIMEOUT)
