"""Every documented error answer of the emulator, with its code, error and message."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from emulator_support import (
    CHURN_CONFIG,
    SECRET_KEY,
    TIMEOUT,
    AitemsClient,
    PredoneClient,
    assert_bad_request,
    assert_error,
    get_api_key,
    infer,
)

from airflow_provider_predone.emulator import EmulatorProcess

ROW = "customer_id,age,plan,visits,signup,spend\nC1,30,pro,20,2024-02-02,50\n"


def test_credential_errors(emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int]) -> None:
    key, model_id = trained
    retrain_key = predone.key("retrain", model_id)
    assert_bad_request(requests.get(f"{predone.base}/models", timeout=TIMEOUT), "invalid_api_key.")
    assert_bad_request(predone.call("GET", "/models", "never-issued"), "Not_found_credential.")
    assert_bad_request(predone.call("GET", "/models", retrain_key), "Not_found_credential.")
    response = predone.call("GET", "/retrain_jobs/upload_url", key, params={"filename": "a.csv"})
    assert_bad_request(response, "Not_found_credential.")
    assert_bad_request(predone.call("GET", "/classifiers", SECRET_KEY), "Not_found_credential.")
    assert predone.call("GET", "/models", key).status_code == 200
    emulator.expire_keys()
    assert_bad_request(predone.call("GET", "/models", key), "Inactive_credential.")
    response = predone.call("GET", "/retrain_jobs/upload_url", retrain_key, params={"filename": "a.csv"})
    assert_bad_request(response, "Inactive_credential.")
    # Keys issued afterwards work; with a zero lifetime they are born expired.
    assert predone.call("GET", "/models", predone.key()).status_code == 200
    default_ttl = emulator.configure()["api_key_ttl"]
    emulator.configure(api_key_ttl=0)
    try:
        assert_bad_request(predone.call("GET", "/models", predone.key()), "Inactive_credential.")
    finally:  # the shared emulator's fixture does not restore this setting
        emulator.configure(api_key_ttl=default_ttl)


def test_get_api_key_errors(predone: PredoneClient, trained: tuple[str, int]) -> None:
    def get(params: dict[str, Any], secret: str | None = SECRET_KEY) -> requests.Response:
        return get_api_key(predone.url, secret, **params)

    _, model_id = trained
    assert_bad_request(get({"credential_type": "train"}, secret=None), "invalid_api_key.")
    assert_bad_request(get({"credential_type": "train"}, secret="wrong"), "Not_found_credential.")
    assert_bad_request(get({"credential_type": "retrain"}), "Model id is required.")
    assert_bad_request(get({"credential_type": "retrain", "model_id": 999}), "This model may be deleted.")
    assert_bad_request(get({"credential_type": "retrain", "model_id": "x"}), "This model may be deleted.")
    assert_bad_request(get({"credential_type": "admin"}), "Invalid credential_type.")
    first, second = (get({"credential_type": "retrain", "model_id": model_id}).json() for _ in range(2))
    assert first["api_key"] != second["api_key"]


def test_training_errors(predone: PredoneClient, data: dict[str, Path]) -> None:
    key = predone.key()
    assert_bad_request(
        predone.call("GET", "/data-sets/upload-url", key, params={"extension": "xlsx"}), "Invalid extension."
    )
    for params in ({"external_process_id": "nope"}, {}):
        response = predone.call("GET", "/data-sets/column-info", key, params=params)
        assert_bad_request(response, "Not found external process id.")
    urls = predone.call("GET", "/data-sets/upload-url", key, params={"extension": "csv"}).json()
    process_id = urls["external_process_id"]
    params = {"external_process_id": process_id}
    assert_bad_request(predone.call("GET", "/data-sets/column-info", key, params=params), "Not found data set.")
    body = {"external_process_id": process_id, "name": "m", "config": CHURN_CONFIG}
    assert_bad_request(predone.call("POST", "/models", key, json=body), "Not found data set.")
    assert_bad_request(predone.call("GET", "/models/results", key, params=params), "Not found model.")
    unknown = {"external_process_id": "nope", "name": "m", "config": CHURN_CONFIG}
    assert_bad_request(predone.call("POST", "/models", key, json=unknown), "Not found external process id.")
    assert_bad_request(predone.call("POST", "/models", key, data="{"), "Invalid request body: the body is not JSON.")
    no_name = {"external_process_id": process_id, "config": CHURN_CONFIG}
    assert_bad_request(predone.call("POST", "/models", key, json=no_name), "Invalid request body: name is required.")
    assert_bad_request(predone.call("DELETE", "/models/999", key), "This model may be deleted.")
    assert_bad_request(predone.call("DELETE", "/data-sets/999", key), "Not found data set.")
    assert_bad_request(predone.call("GET", "/models", key, params={"limit": "many"}), "Invalid offset or limit.")


@pytest.mark.parametrize(
    ("config", "what"),
    [
        ({"tt": "regression"}, "tc is required"),
        ({"tc": "y", "tt": "clustering"}, "tt must be one of"),
        ({"tc": "y", "tt": "binary_classification"}, "tv is required"),
        ({"tc": "y", "tt": "regression", "tv": "1"}, "tv is required"),
        ({"tc": "y", "tt": "regression", "cv": "-2"}, "cv must be >= -1"),
        ({"tc": "y", "tt": "regression", "cv": "two"}, "cv must be an integer"),
        ({"tc": "y", "tt": "regression", "im": "true"}, "im is only allowed for classification"),
        ({"tc": "y", "tt": "multi_classification", "im": "yes"}, "im must be true or false"),
        ({"tc": "y", "tt": "multi_classification", "tsm": "true"}, "tsm is only allowed with regression"),
        ({"tc": "y", "tt": "regression", "tsm": "true", "tsf": "1", "tst": "2"}, "tsc is required"),
        ({"tc": "y", "tt": "regression", "tsm": True, "tsc": "d", "tsf": 0, "tst": 2}, "tsf must be >= 1"),
        ({"tc": "y", "tt": "regression", "tsm": "true", "tsc": "d", "tsf": "3", "tst": "2"}, "tst must be >= 3"),
        ({"tc": "y", "tt": "regression", "tsu": "week"}, "tsu must be one of"),
        ({"tc": "y", "tt": "regression", "tsi": "-1"}, "tsi must be >= 0"),
        ({"tc": "y", "tt": "regression", "tsine": "a"}, "tsine must be a list"),
        ({"tc": "y", "tt": "regression", "colour": "red"}, "unknown key colour"),
        ("tc=y", "config must be an object"),
    ],
)
def test_invalid_configs_are_refused(predone: PredoneClient, data: dict[str, Path], config: Any, what: str) -> None:
    key = predone.key()
    process_id = predone.upload_training_data(key, data["learn"])
    response = predone.call(
        "POST", "/models", key, json={"external_process_id": process_id, "name": "m", "config": config}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 4001000204
    assert response.json()["message"].startswith(f"Invalid config: {what}"), response.json()


def test_retraining_errors(predone: PredoneClient, trained: tuple[str, int], data: dict[str, Path]) -> None:
    key, model_id = trained
    retrain_key = predone.key("retrain", model_id)

    def upload_url(filename: str | None) -> requests.Response:
        params = {} if filename is None else {"filename": filename}
        return predone.call("GET", "/retrain_jobs/upload_url", retrain_key, params=params)

    assert_bad_request(upload_url(None), "Filename is required.")
    assert_bad_request(upload_url("data.xlsx"), "Invalid file extension.")
    assert_bad_request(predone.call("GET", "/retrain_jobs/nope", retrain_key), "Not found retrain job.")
    assert_bad_request(predone.call("PUT", "/retrain_jobs/nope/update_model", retrain_key), "Not found retrain job.")
    job_id = upload_url("data.csv").json()["retrain_job_id"]
    response = predone.call("PUT", f"/retrain_jobs/{job_id}/update_model", retrain_key)
    assert_bad_request(response, "Retrain job is not finished.")

    # A retrain key only sees the jobs of its own model.
    predone.train(key, data["learn"], CHURN_CONFIG, name="other")
    other_key = predone.key("retrain", predone.newest_model_id(key))
    assert_bad_request(predone.call("GET", f"/retrain_jobs/{job_id}", other_key), "Not found retrain job.")

    # A finished job of a model without a prediction API cannot switch.
    _, finished_job, status = predone.retrain(model_id, data["retrain"], "retrain.csv")
    assert status["status"] == "job_finished"
    response = predone.call("PUT", f"/retrain_jobs/{finished_job}/update_model", retrain_key)
    assert_bad_request(response, "Not found classifier.")


def test_classifier_errors(predone: PredoneClient, trained: tuple[str, int], data: dict[str, Path]) -> None:
    key, model_id = trained

    def create(body: dict[str, Any]) -> requests.Response:
        return predone.call("POST", "/classifiers", key, json=body)

    assert_bad_request(create({"model_id": 999, "rules": []}), "This model may be deleted.")
    for rules in (
        [{"source": "not-an-ip", "order": "allow", "priority": 1}],
        [{"source": "10.0.0.0/8", "order": "maybe", "priority": 1}],
        [{"source": "10.0.0.0/8", "order": "allow", "priority": "first"}],
        [{"source": "10.0.0.0/8", "order": "allow"}],
        "0.0.0.0/0",
    ):
        assert_bad_request(create({"model_id": model_id, "rules": rules}), "Invalid rules.")
    process_id = predone.upload_training_data(key, data["learn"])
    body = {"external_process_id": process_id, "name": "slow", "config": CHURN_CONFIG}
    predone.call("POST", "/models", key, json=body).raise_for_status()
    untrained = predone.newest_model_id(key)
    assert_bad_request(create({"model_id": untrained, "rules": []}), "Model is not trained.")
    for method in ("GET", "PATCH", "DELETE"):
        response = predone.call(method, "/classifiers/nope", key, json={})
        assert_bad_request(response, "Not found classifier.")


def test_inference_errors(emulator: EmulatorProcess, predone: PredoneClient, trained: tuple[str, int]) -> None:
    key, model_id = trained
    deny_me = [
        {"source": "127.0.0.1/32", "order": "deny", "priority": 1},
        {"source": "0.0.0.0/0", "order": "allow", "priority": 2},
    ]
    denied = predone.deploy(key, model_id, rules=deny_me)
    classifier = predone.deploy(key, model_id)
    url = classifier["url"]

    def post(body: Any, api_key: str | None = classifier["api_key"], target: str = url) -> requests.Response:
        headers = {"x-api-key": api_key} if api_key else {}
        return requests.post(target, json=body, headers=headers, timeout=TIMEOUT)

    def pr(text: str) -> dict[str, Any]:
        return {"inputs": [{"name": "pr", "type": "csv", "data": base64.b64encode(text.encode()).decode()}]}

    def bad_request(response: requests.Response, message: str) -> None:
        assert response.status_code == 400, response.text
        answer = response.json()
        assert (answer["code"], answer["error"]) == (4001030104, "BAD_REQUEST")
        assert answer["message"].startswith(message), answer

    access_denied = (403, 4031030201, "ACCESS_DENIED")
    assert_error(post(pr(ROW), api_key="wrong"), *access_denied, "Invalid API key")
    assert_error(post(pr(ROW), api_key=None), *access_denied, "Invalid API key")
    assert_error(
        post(pr(ROW), api_key=denied["api_key"], target=denied["url"]), *access_denied, "Not allowed source ip"
    )
    assert_error(
        post(pr(ROW), target=f"{emulator.url}/v1/inference/nope"),
        400,
        4001030101,
        "NOT_FOUND_CLASSIFIER",
        "Not found classifier",
    )
    bad_request(post({"rows": []}), "inputs must be a list of objects")
    bad_request(post({"inputs": [{"name": "pr", "type": "csv", "data": "%%%"}]}), "input pr is not base64 CSV data")
    bad_request(post({"inputs": []}), "input pr (base64 CSV) is required")
    bad_request(post(pr("customer_id,age\nC1,30\n")), "missing feature columns: plan, visits, signup, spend")
    bad_request(post(pr(ROW.splitlines()[0] + "\n")), "input pr has no data row")
    bad_request(
        post({"inputs": [*pr(ROW)["inputs"], {"name": "xx", "type": "bool", "data": True}]}), "unknown input xx"
    )
    bad_request(
        post({"inputs": [*pr(ROW)["inputs"], {"name": "ar", "type": "bool", "data": 3}]}), "input ar must be a boolean"
    )
    bad_request(
        post({"inputs": [*pr(ROW)["inputs"], {"name": "pc", "type": "string", "data": "id"}]}),
        "input pc must name a column of pr",
    )
    response = requests.post(url, data=b"{", headers={"x-api-key": classifier["api_key"]}, timeout=TIMEOUT)
    bad_request(response, "the body is not JSON")
    assert infer(classifier, ROW).status_code == 200


def test_presigned_url_errors(predone: PredoneClient, data: dict[str, Path]) -> None:
    key = predone.key()
    urls = predone.call("GET", "/data-sets/upload-url", key, params={"extension": "csv"}).json()
    learn_url = urls["learn_data_set_upload_url"]

    def chunks() -> Any:
        yield b"a,b\n"
        yield b"1,2\n"

    missing_length = requests.put(learn_url, data=chunks(), timeout=TIMEOUT)
    assert missing_length.status_code == 411
    assert "<Code>MissingContentLength</Code>" in missing_length.text
    tampered = learn_url[:-4] + ("0000" if not learn_url.endswith("0000") else "1111")
    wrong = requests.put(tampered, data=b"a,b\n1,2\n", timeout=TIMEOUT)
    assert (wrong.status_code, wrong.headers["Content-Type"].split(";")[0]) == (403, "application/xml")
    assert "<Code>SignatureDoesNotMatch</Code>" in wrong.text
    unsigned = requests.put(learn_url.split("?")[0], data=b"a,b\n", timeout=TIMEOUT)
    assert unsigned.status_code == 403
    wrong_method = requests.get(learn_url, timeout=TIMEOUT)
    assert wrong_method.status_code == 405
    assert "<Code>MethodNotAllowed</Code>" in wrong_method.text
    assert requests.delete(learn_url, timeout=TIMEOUT).status_code == 405

    with data["learn"].open("rb") as source:
        assert requests.put(learn_url, data=source, timeout=TIMEOUT).status_code == 200
    second = requests.put(learn_url, data=b"a,b\n1,2\n", timeout=TIMEOUT)
    assert second.status_code == 412
    assert "<Code>PreconditionFailed</Code>" in second.text

    # Download URLs: repeatable GETs, but no PUT.
    download_url = predone.call("GET", "/data-sets", key).json()["data_sets"][0]["download_url"]
    assert requests.get(download_url, timeout=TIMEOUT).content == requests.get(download_url, timeout=TIMEOUT).content
    assert requests.put(download_url, data=b"x", timeout=TIMEOUT).status_code == 405
    data_set_id = predone.call("GET", "/data-sets", key).json()["data_sets"][0]["data_set_id"]
    predone.call("DELETE", f"/data-sets/{data_set_id}", key).raise_for_status()
    gone = requests.get(download_url, timeout=TIMEOUT)
    assert gone.status_code == 404
    assert "<Code>NoSuchKey</Code>" in gone.text


def test_presigned_urls_expire(fresh_emulator: Callable[..., EmulatorProcess], data: dict[str, Path]) -> None:
    emulator = fresh_emulator(url_ttl=1)
    predone = PredoneClient(emulator.url)
    key = predone.key()
    urls = predone.call("GET", "/data-sets/upload-url", key, params={"extension": "csv"}).json()
    time.sleep(2.05)  # the URL's date has a one-second resolution
    expired = requests.put(urls["learn_data_set_upload_url"], data=b"a,b\n1,2\n", timeout=TIMEOUT)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in expired.text


def test_aitems_authentication_errors(aitems: AitemsClient) -> None:
    def assert_gateway(response: requests.Response, status: int, code: str, message: str) -> None:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert (error["errorCode"], error["message"]) == (code, message)
        assert error["details"]

    body = {"name": "shop_recs", "type": "batch"}
    assert aitems.request("POST", "/api/v1/services", body).status_code == 200
    assert_gateway(
        aitems.request("POST", "/api/v1/services", body, signature="AAAA"), 401, "200", "Authentication Failed"
    )
    assert_gateway(
        aitems.request("POST", "/api/v1/services", body, skew_ms=-301_000), 401, "200", "Authentication Failed"
    )
    assert_gateway(
        aitems.request("POST", "/api/v1/services", body, skew_ms=301_000), 401, "200", "Authentication Failed"
    )
    assert (
        aitems.request(
            "POST", "/api/v1/services", {"name": "shop_recs2", "type": "batch"}, skew_ms=-200_000
        ).status_code
        == 200
    )
    stranger = AitemsClient(aitems.url, access_key="someone-else")
    assert_gateway(stranger.request("GET", "/api/v1/services/x"), 401, "200", "Authentication Failed")
    wrong_secret = AitemsClient(aitems.url, secret_key="guess")
    assert_gateway(wrong_secret.request("GET", "/api/v1/services/x"), 401, "200", "Authentication Failed")
    # The query string is part of what is signed.
    service_id = aitems.request("POST", "/api/v1/services", {"name": "qs_check", "type": "batch"}).json()["serviceId"]
    uri = f"/api/v1/services/{service_id}/trains?isRecent=true"
    signed_without_query = aitems.sign("GET", uri.split("?")[0], str(int(time.time() * 1000)))
    assert_gateway(aitems.request("GET", uri, signature=signed_without_query), 401, "200", "Authentication Failed")
    no_headers = requests.get(aitems.url + uri, timeout=TIMEOUT)
    assert_gateway(no_headers, 401, "200", "Authentication Failed")
    assert_gateway(aitems.request("GET", "/api/v1/services/unknown"), 404, "300", "Not Found")
    assert_gateway(
        aitems.request("POST", "/api/v1/services", {"name": "9lives", "type": "batch"}), 400, "100", "Bad Request"
    )
    assert_gateway(
        aitems.request("POST", "/api/v1/services", {"name": "ok_name", "type": "stream"}), 400, "100", "Bad Request"
    )
    bad_types = {"types": ["everything"], "hpConfig": {"is_enabled": False}}
    assert_gateway(aitems.request("POST", f"/api/v1/services/{service_id}", bad_types), 400, "100", "Bad Request")
    unknown_version = f"/api/v1/services/{service_id}/trains/pop/versions/nope"
    assert_gateway(aitems.request("GET", unknown_version), 404, "300", "Not Found")
