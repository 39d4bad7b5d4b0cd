"""
The NAVER Cloud AiTEMS API and the NCP API Gateway signature v2, without transport.

Shared by the sync :class:`~airflow_provider_predone.hooks.aitems.AitemsHook` and the async
client its triggers use. The signature is computed per request (per attempt), so a retry or a
long deferral never sends a stale timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    NotFoundError,
    TransientApiError,
)
from airflow_provider_predone.protocol.common import ApiRequest, StatusSets, path_id, snippet
from airflow_provider_predone.protocol.fields import AnswerShapeError, answer_id

DEFAULT_HOST = "https://aitems.apigw.ntruss.com"
API_PATH = "/api/v1"
TRAIN_TYPES = ("personalRecommend", "relatedItem", "pop")
SERVICE_TYPES = ("batch", "interval")

#: ``stopping`` is not a documented failure, but a stopping training never completes: waiting
#: for it would only run into the deadline.
TRAINING_STATUSES = StatusSets(
    success=frozenset({"completed"}),
    failure=frozenset({"requestFailed", "refinedFailed", "learningFailed", "stopping"}),
    running=frozenset({"ready", "waiting", "requesting", "learning"}),
)

_SERVICE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{2,19}$")
_HP_LONG_OPTIONS = (
    "session_max_timestamp",
    "item_top_n",
    "min_item_cut",
    "min_session_length",
    "max_user_recommend_top",
)


def base_url(host: str | None) -> str:
    """The API root: ``host`` (a full origin, e.g. the emulator's) or the NCP gateway."""
    origin = (host or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in origin:
        origin = f"https://{origin}"
    return f"{origin}{API_PATH}"


def signature(method: str, uri: str, timestamp_ms: str, access_key: str, secret_key: str) -> str:
    """
    NCP API Gateway signature v2: base64(HMAC-SHA256(secret, "METHOD URI\\nTIMESTAMP\\nACCESS_KEY")).

    :param uri: path including ``/api/v1`` and the query string exactly as sent.
    """
    message = f"{method} {uri}\n{timestamp_ms}\n{access_key}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_headers(
    method: str, url: str, access_key: str, secret_key: str, now_ms: int | None = None
) -> dict[str, str]:
    """The three gateway headers for one request to ``url`` (signed over its path and query)."""
    parts = urlsplit(url)
    uri = f"{parts.path}?{parts.query}" if parts.query else parts.path
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    return {
        "x-ncp-apigw-timestamp": timestamp,
        "x-ncp-iam-access-key": access_key,
        "x-ncp-apigw-signature-v2": signature(method, uri, timestamp, access_key, secret_key),
    }


def _dict(payload: Any, field: str = "") -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise AnswerShapeError(field, "a JSON object", payload)
    return payload


def _service(payload: Any, where: str = "") -> dict[str, Any]:
    """A service of an answer (``where`` it is, e.g. ``services[0]``): its ``serviceId`` goes into paths."""
    service = _dict(payload, where)
    if service.get("serviceId") is not None:
        answer_id(service["serviceId"], f"{where}.serviceId" if where else "serviceId")
    return dict(service)


# --- validation -----------------------------------------------------------------------------------


def validate_train_types(train_types: Any) -> list[str]:
    """Non-empty, without repeats, each one of :data:`TRAIN_TYPES`."""
    if isinstance(train_types, str):
        train_types = [train_types]
    if not isinstance(train_types, Sequence) or not train_types:
        raise InvalidInputError(f"train_types must be a non-empty list of {list(TRAIN_TYPES)}, got {train_types!r}")
    unknown = [t for t in train_types if t not in TRAIN_TYPES]
    if unknown:
        raise InvalidInputError(f"train_types: {unknown} not allowed; allowed: {list(TRAIN_TYPES)}")
    if len(set(train_types)) != len(train_types):
        raise InvalidInputError(f"train_types repeats a type: {list(train_types)}")
    return list(train_types)


def validate_hp_config(hp_config: Any) -> dict[str, Any]:
    """HPO settings: ``is_enabled`` (bool, default false) plus options; long options must be integers."""
    if hp_config is None:
        return {"is_enabled": False}
    if not isinstance(hp_config, Mapping):
        raise InvalidInputError(f"hp_config must be a mapping, got {hp_config!r}")
    config = dict(hp_config)
    enabled = config.setdefault("is_enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidInputError(f"hp_config.is_enabled must be true or false, got {enabled!r}")
    for option in _HP_LONG_OPTIONS:
        value = config.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidInputError(f"hp_config.{option} must be a non-negative integer, got {value!r}")
    return config


def validate_service_name(name: Any) -> str:
    if not isinstance(name, str) or not _SERVICE_NAME.match(name):
        raise InvalidInputError(
            f"service name must be 3-20 letters, digits or '_', starting with a letter or '_', got {name!r}"
        )
    return name


# --- endpoints ------------------------------------------------------------------------------------


def create_service(
    name: str, service_type: str = "batch", description: str | None = None
) -> ApiRequest[dict[str, Any]]:
    """A1 Create service. Not idempotent."""
    if service_type not in SERVICE_TYPES:
        raise InvalidInputError(f"service type must be one of {list(SERVICE_TYPES)}, got {service_type!r}")
    body: dict[str, Any] = {"name": validate_service_name(name), "type": service_type}
    if description:
        body["description"] = description
    return ApiRequest("Create service", "POST", "/services", _service, json=body, idempotent=False)


def list_services() -> ApiRequest[list[dict[str, Any]]]:
    """List services."""

    def parse(payload: Any) -> list[dict[str, Any]]:
        field = "" if isinstance(payload, list) else "services"
        body = payload if isinstance(payload, list) else _dict(payload).get("services", [])
        if not isinstance(body, list):
            raise AnswerShapeError("services", "a list", body)
        return [_service(s, f"{field}[{i}]") for i, s in enumerate(body)]

    return ApiRequest("List services", "GET", "/services", parse)


def request_training(
    service_id: str, train_types: Sequence[str], hp_config: Mapping[str, Any] | None, description: str | None
) -> ApiRequest[dict[str, Any]]:
    """A2 Request service training (batch services): one training per type. Not idempotent."""
    body: dict[str, Any] = {
        "types": validate_train_types(train_types),
        "hpConfig": validate_hp_config(hp_config),
    }
    if description:
        body["description"] = description

    def parse(payload: Any) -> dict[str, Any]:
        return payload if isinstance(payload, dict) else {}

    return ApiRequest(
        "Request service training",
        "POST",
        f"/services/{path_id(service_id, 'service_id')}",
        parse,
        json=body,
        idempotent=False,
    )


def list_trainings(
    service_id: str, *, is_recent: bool = True, offset: int = 0, limit: int = 1000
) -> ApiRequest[list[dict[str, Any]]]:
    """A4 List trainings; ``is_recent`` keeps only the latest request per type."""

    def parse(payload: Any) -> list[dict[str, Any]]:
        trains = _dict(payload)["trains"]
        if not isinstance(trains, list):
            raise AnswerShapeError("trains", "a list", trains)
        checked = []
        for i, train in enumerate(trains):
            train = _dict(train, f"trains[{i}]")
            if train.get("version") is not None:  # polled by "View training": it goes into a path
                answer_id(train["version"], f"trains[{i}].version")
            checked.append(dict(train))
        return checked

    return ApiRequest(
        "List trainings",
        "GET",
        f"/services/{path_id(service_id, 'service_id')}/trains",
        parse,
        params={"offset": offset, "limit": limit, "isRecent": is_recent},
    )


def get_training(service_id: str, train_type: str, version: str) -> ApiRequest[dict[str, Any]]:
    """A5 View training."""
    if train_type not in TRAIN_TYPES:
        raise InvalidInputError(f"train_type must be one of {list(TRAIN_TYPES)}, got {train_type!r}")

    def parse(payload: Any) -> dict[str, Any]:
        body = _dict(payload)
        if not isinstance(body.get("status"), str):
            raise AnswerShapeError("status", "a string", body.get("status"))
        # The status reaches logs and trigger events: one line, bounded, no query strings.
        return {**body, "status": snippet(body["status"], 200)}

    path = f"/services/{path_id(service_id, 'service_id')}/trains/{train_type}/versions/{path_id(version, 'version')}"
    return ApiRequest("View training", "GET", path, parse)


def latest_versions(trains: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Type → newest version in a training list (the list is newest first, as the API answers)."""
    versions: dict[str, str] = {}
    for train in trains:
        kind, version = train.get("type"), train.get("version")
        if isinstance(kind, str) and version is not None and kind not in versions:
            versions[kind] = str(version)
    return versions


# --- data (schemas and datasets) ---


# --- services ---


# --- interval ---


# --- recommendations ---


# --- errors ---------------------------------------------------------------------------------------

_STATUS_ERRORS: Mapping[int, tuple[type[ApiError], str]] = {
    400: (BadRequestError, "the gateway refused the request as malformed"),
    401: (AuthenticationError, "the signature, access key or timestamp was refused"),
    403: (AuthenticationError, "the access key may not use this API"),
    404: (NotFoundError, "the service, training or version does not exist"),
}


def map_error(request: ApiRequest[Any], status: int, payload: Any, text: str) -> ApiError | None:
    """Map an API Gateway / AiTEMS error answer (``{"error": {"errorCode", "message", "details"}}``)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    code, message, details = error.get("errorCode"), error.get("message"), error.get("details")
    vendor = snippet(" — ".join(str(p) for p in (message, details) if p) or text)
    what = f"{request.label} failed (HTTP {status}, errorCode {code}): {vendor}"
    if status == 429 or status >= 500:
        return TransientApiError(what, endpoint=request.name, http_status=status, code=code, vendor_message=message)
    cls, meaning = _STATUS_ERRORS.get(status, (BadRequestError, "the request was refused"))
    return cls(f"{what} — {meaning}", endpoint=request.name, http_status=status, code=code, vendor_message=message)
