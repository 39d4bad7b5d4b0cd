"""AiTEMS request building and the NCP API Gateway signature v2."""

from __future__ import annotations

import base64
import subprocess

import pytest

from airflow_provider_predone.exceptions import AuthenticationError, InvalidInputError, NotFoundError, TransientApiError
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import read_answer


def openssl_signature(message: str, secret: str) -> str:
    """HMAC-SHA256 computed by openssl, independently of our code, base64-encoded."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"],
        input=message.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return base64.b64encode(digest).decode()


def test_signature_matches_an_independent_computation() -> None:
    headers = api.signed_headers(
        "GET",
        "https://aitems.apigw.ntruss.com/api/v1/services/abc/trains?offset=0&limit=1000&isRecent=true",
        "ACCESSKEY123",
        "s3cr3t",
        now_ms=1732345678901,
    )
    message = "GET /api/v1/services/abc/trains?offset=0&limit=1000&isRecent=true\n1732345678901\nACCESSKEY123"
    assert headers == {
        "x-ncp-apigw-timestamp": "1732345678901",
        "x-ncp-iam-access-key": "ACCESSKEY123",
        "x-ncp-apigw-signature-v2": openssl_signature(message, "s3cr3t"),
    }


def test_signature_covers_the_path_prefix_of_a_custom_host() -> None:
    headers = api.signed_headers("POST", "http://127.0.0.1:8765/api/v1/services", "k", "s", now_ms=1)
    assert headers["x-ncp-apigw-signature-v2"] == openssl_signature("POST /api/v1/services\n1\nk", "s")


def test_list_trainings_target_is_what_gets_signed() -> None:
    request = api.list_trainings("svc1", is_recent=True)
    assert request.target == "/services/svc1/trains?offset=0&limit=1000&isRecent=true"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: api.validate_train_types([]), "non-empty list"),
        (lambda: api.validate_train_types(["pop", "trending"]), "['trending'] not allowed"),
        (lambda: api.validate_train_types(["pop", "pop"]), "repeats"),
        (lambda: api.validate_hp_config({"is_enabled": "yes"}), "is_enabled must be true or false"),
        (lambda: api.validate_hp_config({"item_top_n": 2.5}), "item_top_n must be an integer from 1000 to 500000"),
        (lambda: api.validate_service_name("9lives"), "service name must start with a letter or '_'"),
        (lambda: api.create_service("shop", "weekly"), "service type must be one of"),
        (lambda: api.get_training("s", "bestsellers", "v1"), "train_type must be one of"),
        (lambda: api.get_training("s", "pop", "../v1"), "version must be"),
    ],
)
def test_bad_input_is_refused_before_sending(call, message) -> None:
    with pytest.raises(InvalidInputError, match=__import__("re").escape(message)):
        call()


@pytest.mark.parametrize(
    ("status", "error_cls"),
    [(401, AuthenticationError), (404, NotFoundError), (429, TransientApiError), (503, TransientApiError)],
)
def test_gateway_errors_map_to_typed_exceptions(status, error_cls) -> None:
    body = b'{"error": {"errorCode": "200", "message": "Authentication Failed", "details": "Invalid signature"}}'
    with pytest.raises(error_cls) as raised:
        read_answer(api.list_services(), status, {}, body, api.map_error, "aitems_default")
    assert "Authentication Failed" in str(raised.value)
    if error_cls is AuthenticationError:
        assert "connection 'aitems_default'" in str(raised.value)


def test_latest_versions_takes_the_newest_per_type() -> None:
    trains = [
        {"type": "pop", "version": "v3"},
        {"type": "relatedItem", "version": "v2"},
        {"type": "pop", "version": "v1"},
    ]
    assert api.latest_versions(trains) == {"pop": "v3", "relatedItem": "v2"}
