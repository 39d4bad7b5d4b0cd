"""The transport-free Prediction One layer: config rules, error mapping, parsing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    JobNotFinishedError,
    NotFoundError,
    PredictionApiNotRunningError,
    ServerError,
    TransientApiError,
    UnexpectedResponseError,
)
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import Credential, Phase, StatusSets, read_answer

BINARY = {"tc": "y", "tt": "binary_classification", "tv": "1"}
SERIES = {"tc": "y", "tt": "regression", "tsm": "true", "tsc": "date", "tsf": "1", "tst": "3"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"tt": "regression"}, "'tc' (the target column) is required"),
        ({"tc": "y", "tt": "clustering"}, "'tt' (prediction type) must be one of"),
        ({"tc": "y", "tt": "binary_classification"}, "'tv' (the positive value) is required"),
        ({"tc": "y", "tt": "regression", "tv": "1"}, "'tv' is only allowed when 'tt' is binary_classification"),
        ({**BINARY, "cv": "-2"}, "'cv' must be an integer >= -1"),
        ({**BINARY, "cv": "two"}, "'cv' must be an integer >= -1"),
        ({**BINARY, "im": "yes"}, "'im' must be 'true' or 'false'"),
        ({"tc": "y", "tt": "regression", "im": "true"}, "'im' (class imbalance) is only allowed for classification"),
        ({**BINARY, "tsm": "true", "tsc": "d", "tsf": 1, "tst": 1}, "only allowed when 'tt' is regression"),
        ({"tc": "y", "tt": "regression", "tsc": "d"}, "need 'tsm': 'true'"),
        ({"tc": "y", "tt": "regression", "tsm": "true", "tsf": "1", "tst": "2"}, "'tsc' is required"),
        ({"tc": "y", "tt": "regression", "tsm": "true", "tsc": "d", "tst": "2"}, "'tsf' is required"),
        ({"tc": "y", "tt": "regression", "tsm": "true", "tsc": "d", "tsf": "2"}, "'tst' is required"),
        ({**SERIES, "tsf": "4"}, "'tst' must be >= 'tsf'"),
        ({**SERIES, "tsf": "0"}, "'tsf' must be an integer >= 1"),
        ({**SERIES, "tsu": "week"}, "'tsu' (time unit) must be one of"),
        ({**SERIES, "tsi": "-1"}, "'tsi' must be an integer >= 0"),
        ({**SERIES, "tsin": "maybe"}, "'tsin' must be 'true' or 'false'"),
        ({**SERIES, "tsine": "a,b"}, "'tsine' must be a list of column names"),
        ({**BINARY, "target": "y"}, "unknown key(s) ['target']"),
        ("tc=y", "config must be a mapping"),
    ],
)
def test_config_rules_name_the_key_and_what_is_allowed(config, message) -> None:
    with pytest.raises(InvalidInputError, match=__import__("re").escape(message)):
        api.validate_config(config)


def test_valid_configs_are_normalised_to_strings() -> None:
    assert api.validate_config({"tc": "y", "tt": "binary_classification", "tv": 1, "cv": 5, "im": True}) == {
        "tc": "y",
        "tt": "binary_classification",
        "tv": "1",
        "cv": "5",
        "im": "true",
    }
    assert api.validate_config({**SERIES, "tsu": "eom", "tsin": False, "tsine": ["a"], "tss": "store"}) == {
        **SERIES,
        "tsu": "eom",
        "tsin": "false",
        "tsine": ["a"],
        "tss": "store",
    }


def test_every_broken_rule_is_reported_at_once() -> None:
    with pytest.raises(InvalidInputError) as raised:
        api.validate_config({"tt": "binary_classification", "cv": "-5"})
    assert "'tc'" in str(raised.value)
    assert "'tv'" in str(raised.value)
    assert "'cv'" in str(raised.value)


def test_config_columns_lists_what_must_be_in_the_data() -> None:
    config = {**SERIES, "tss": "store", "tsine": ["promo"]}
    assert api.config_columns(config) == {"tc": "y", "tsc": "date", "tss": "store", "tsine[0]": "promo"}


def _answer(status: int, body: bytes, request=None, headers=None):
    request = request or api.get_train_status("p1")
    return read_answer(request, status, headers or {}, body, api.map_error, "predone_default")


@pytest.mark.parametrize(
    ("message", "error_cls", "meaning"),
    [
        ("invalid_api_key.", AuthenticationError, "does not exist"),
        ("Inactive_credential.", AuthenticationError, "no longer active"),
        ("Not_found_credential.", AuthenticationError, "the API key is wrong"),
        ("This user may be deleted.", AuthenticationError, "user may have been deleted"),
        ("This model may be deleted.", NotFoundError, "model may have been deleted"),
        ("This job may be deleted.", NotFoundError, "retrain job may have been deleted"),
        ("Model id is required.", BadRequestError, "needs a model_id"),
        ("Not found retrain job.", NotFoundError, "retrain_job_id is wrong"),
        ("Not found classifier.", NotFoundError, "prediction API may have been deleted"),
        ("Retrain job is not finished.", JobNotFinishedError, "has not finished"),
    ],
)
def test_documented_errors_map_to_typed_exceptions(message, error_cls, meaning) -> None:
    body = f'{{"code": 4001000204, "error": "PREDA_EXTERNAL_BAD_REQUEST", "message": "{message}"}}'.encode()
    with pytest.raises(error_cls) as raised:
        _answer(400, body)
    error = raised.value
    assert error.code == 4001000204
    assert error.vendor_message == message
    assert "Train Status Check (GET /models/results)" in str(error)
    assert meaning in str(error)
    assert not error.transient
    if error_cls is AuthenticationError:
        assert "connection 'predone_default'" in str(error)


@pytest.mark.parametrize("message", ["Not_found_credential.", "Inactive_credential.", "invalid_api_key."])
def test_a_refused_secret_key_is_called_the_secret_key(message) -> None:
    """Get API Key is sent with what the user typed as "Secret key": the error must not say "API key"."""
    body = f'{{"code": 4001000204, "error": "PREDA_EXTERNAL_BAD_REQUEST", "message": "{message}"}}'.encode()
    with pytest.raises(AuthenticationError) as raised:
        _answer(400, body, request=api.get_api_key(Credential.TRAIN))
    assert "the connection's Secret key (its password field) is wrong or no longer active" in str(raised.value)
    assert "the API key" not in str(raised.value)


def test_configuration_file_missing_is_a_permanent_server_error() -> None:
    body = (
        b'{"code": 5001000201, "error": "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR",'
        b' "message": "Not found configuration_file."}'
    )
    with pytest.raises(ServerError) as raised:
        _answer(500, body)
    assert not raised.value.transient
    assert "configuration file" in str(raised.value)


@pytest.mark.parametrize(
    "options",
    [
        api.InferenceOptions(),
        api.InferenceOptions(ar=True, ad=True, nc=True, nr=True),
        api.InferenceOptions(nr=True, pc='顧客 "@base64@" \\ id'),  # quotes, escapes, the placeholder
    ],
)
def test_inference_body_is_the_documented_json(options) -> None:
    """The body is built around each row's base64 (a template per options): it must still be the
    JSON the vendor documents, whatever the id column is called."""
    rows = "id,年齢\n1,30\n".encode()
    body = json.loads(api.infer("http://h/v1/inference/c", rows, options).body() or b"")
    expected = [
        {"name": "pr", "type": "csv", "data": base64.b64encode(rows).decode()},
        {"name": "ar", "type": "bool", "data": options.ar},
        {"name": "ad", "type": "bool", "data": options.ad},
        {"name": "nc", "type": "bool", "data": options.nc},
        {"name": "nr", "type": "bool", "data": options.nr},
    ]
    if options.pc:
        expected.append({"name": "pc", "type": "string", "data": options.pc})
    assert body == {"inputs": expected}


@pytest.mark.parametrize(
    ("status", "code", "error_cls"),
    [
        (400, 4001030101, NotFoundError),
        (400, 4001030104, BadRequestError),
        (403, 4031030201, AuthenticationError),
        (503, 5031030101, PredictionApiNotRunningError),
    ],
)
def test_inference_errors_map_by_code(status, code, error_cls) -> None:
    body = f'{{"code": {code}, "error": "X", "message": "m"}}'.encode()
    request = api.infer("http://h/v1/inference/c", b"a,b\n1,2\n", api.InferenceOptions())
    with pytest.raises(error_cls) as raised:
        _answer(status, body, request)
    assert not raised.value.transient  # a stopped prediction API is not retried as a 503 would be
    assert "<prediction API URL>" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "body", "error_cls", "transient"),
    [
        (503, b"<html><body>Service Unavailable</body></html>", TransientApiError, True),
        (502, b"", TransientApiError, True),
        (429, b"slow down", TransientApiError, True),
        (404, b"<html>Not Found</html>", NotFoundError, False),
        (401, b"", AuthenticationError, False),
        (400, b'{"unexpected": true}', BadRequestError, False),
        (418, b"teapot", BadRequestError, False),
    ],
)
def test_undocumented_error_answers_still_give_clear_errors(status, body, error_cls, transient) -> None:
    with pytest.raises(error_cls) as raised:
        _answer(status, body)
    assert raised.value.transient is transient
    assert f"HTTP {status}" in str(raised.value)
    assert ("empty body" in str(raised.value)) == (body == b"")


def test_retry_after_is_kept() -> None:
    with pytest.raises(TransientApiError) as raised:
        _answer(429, b"", headers={"Retry-After": "7"})
    assert raised.value.retry_after == 7.0


@pytest.mark.parametrize("body", [b"<html>ok</html>", b'{"status": 1', b"[]", b'{"no_status": "x"}'])
def test_unreadable_success_answers_are_unexpected_response_errors(body) -> None:
    with pytest.raises(UnexpectedResponseError, match="Train Status Check"):
        _answer(200, body)


def test_status_sets_tell_unknown_statuses_apart_from_running_ones() -> None:
    assert api.TRAIN_STATUSES.classify("finished") is Phase.SUCCESS
    assert api.TRAIN_STATUSES.classify("failed") is Phase.FAILURE
    assert api.TRAIN_STATUSES.classify("running") is Phase.RUNNING
    assert api.TRAIN_STATUSES.classify("preprocessing") is Phase.UNKNOWN  # waited on, with a warning
    custom = api.RETRAIN_STATUSES.overridden(success=["job_finished", "done"])
    assert custom.classify("done") is Phase.SUCCESS
    assert custom.failure == api.RETRAIN_STATUSES.failure
    assert not custom.strict
    assert StatusSets(frozenset(), frozenset()).classify(None) is Phase.UNKNOWN


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T14:00:00Z", datetime(2026, 11, 23, 14, tzinfo=UTC)),
        ("2026/11/23 14:00:00", datetime(2026, 11, 23, 14, tzinfo=UTC)),
        (1795010400, datetime(2026, 11, 18, 14, tzinfo=UTC)),
        ("tomorrow", None),
        (None, None),
    ],
)
def test_end_dates_are_read_leniently(value, expected) -> None:
    assert api.parse_datetime(value) == expected


@pytest.mark.parametrize("bad", ["", " ", "../x", "a/b", "a?b", "a#b", "%2e", None])
def test_ids_that_would_change_a_path_are_refused(bad) -> None:
    with pytest.raises(InvalidInputError, match="retrain_job_id"):
        api.get_retrain_status(bad, 1)


def test_requests_encode_their_query_once() -> None:
    request = api.get_retrain_upload_url(3, "新しい 月.csv")
    assert request.target == "/retrain_jobs/upload_url?filename=%E6%96%B0%E3%81%97%E3%81%84+%E6%9C%88.csv"
    assert request.model_id == 3
    assert not api.create_model("p", "n", {}).idempotent
    assert issubclass(JobNotFinishedError, ApiError)
