"""
The NAVER Cloud AiTEMS API and the NCP API Gateway signature v2, without transport.

Shared by the sync :class:`~airflow_provider_predone.hooks.aitems.AitemsHook` and the async
client its triggers use. The signature is computed per request (per attempt), so a retry or a
long deferral never sends a stale timestamp.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
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
from airflow_provider_predone.protocol.common import ApiRequest, StatusSets, integer_value, path_id, snippet
from airflow_provider_predone.protocol.fields import (
    AnswerFieldError,
    AnswerShapeError,
    answer_id,
    kind_of,
    sendable_name,
)

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

#: NAVER's pages disagree on ``-`` in a service name; the most permissive one allows it.
_SERVICE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{2,19}")
_SERVICE_NAME_CHARACTER = re.compile(r"[A-Za-z0-9_-]")
SERVICE_NAME_LENGTH = (3, 20)
#: the documented HPO options (NAVER's HPO table) and their ranges, inclusive
HP_OPTIONS: Mapping[str, tuple[int, int]] = {
    "session_max_timestamp": (10, 86_400),
    "item_top_n": (1_000, 500_000),
    "min_item_cut": (1, 1_000),
    "min_session_length": (2, 1_000),
    "max_user_recommend_top": (1, 1_000),
    "max_relate_recommend_top": (1, 1_000),
}
#: AiTEMS generates service ids of lowercase letters and digits (``6wxgu...`` in NAVER's
#: examples); a value with any other character was typed by a person: a service name.
_GENERATED_ID = re.compile(r"[a-z0-9]+")


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


def validate_hp_config(hp_config: Any, extra_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """
    HPO settings (``hpConfig``): ``is_enabled`` plus the documented options within NAVER's ranges.

    Numbers may be given as numeric strings (``"500"``) and booleans as ``"true"``/``"false"``,
    as a rendered template gives them and as Prediction One's ``config`` accepts them; they are
    sent as JSON numbers and booleans. Every problem is reported at once.

    :param hp_config: ``{"is_enabled": bool, <option>: int, ...}``; ``None`` disables HPO.
    :param extra_options: options NAVER's reference does not list yet, sent as given, unchecked.
    :raises InvalidInputError: naming each offending option and what is allowed.
    """
    if hp_config is None:
        hp_config = {}
    if not isinstance(hp_config, Mapping):
        raise InvalidInputError(f"hp_config must be a mapping, got {hp_config!r}")
    problems: list[str] = []
    config: dict[str, Any] = {}
    enabled = hp_config.get("is_enabled", False)
    if isinstance(enabled, str) and enabled.strip().lower() in ("true", "false"):
        enabled = enabled.strip().lower() == "true"
    if not isinstance(enabled, bool):
        problems.append(f"hp_config.is_enabled must be true or false, got {enabled!r}")
    config["is_enabled"] = enabled
    unknown = sorted(str(key) for key in hp_config if key != "is_enabled" and key not in HP_OPTIONS)
    if unknown:
        hints = [f"{key!r} (did you mean {close[0]!r}?)" for key in unknown if (close := _close(key))]
        problems.append(
            f"hp_config has unknown option(s) {unknown}{'; ' + ', '.join(hints) if hints else ''}; known: "
            f"{['is_enabled', *HP_OPTIONS]}. An option NAVER's reference does not list yet goes in "
            "extra_hp_options, sent unchecked"
        )
    for option, (low, high) in HP_OPTIONS.items():
        given = hp_config.get(option)
        if given is None:
            continue
        value = integer_value(given)
        if value is None or not low <= value <= high:
            problems.append(f"hp_config.{option} must be an integer from {low} to {high}, got {given!r}")
        else:
            config[option] = value
    for key, value in (extra_options or {}).items():
        if not isinstance(key, str) or not key or key == "is_enabled" or key in HP_OPTIONS:
            problems.append(
                f"extra_hp_options takes options NAVER's reference does not list, not {key!r}: "
                "documented options and is_enabled go in hp_config, where they are checked"
            )
        else:
            config[key] = value
    if problems:
        raise InvalidInputError("; ".join(problems))
    return config


def _close(key: str) -> list[str]:
    return difflib.get_close_matches(key, list(HP_OPTIONS), n=1)


def validate_service_name(name: Any) -> str:
    """
    A service name as NAVER allows it: 3-20 characters, letters, digits, ``_`` or ``-``,
    starting with a letter or ``_``. Each broken rule is named.

    :raises InvalidInputError: saying which rule ``name`` breaks.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"service name must be a string, got {name!r}")
    if _SERVICE_NAME.fullmatch(name):
        return name
    shortest, longest = SERVICE_NAME_LENGTH
    problems = []
    if len(name) < shortest:
        problems.append(f"service name must be at least {shortest} characters long, got {len(name)}")
    elif len(name) > longest:
        problems.append(f"service name must be at most {longest} characters long, got {len(name)}")
    if name and not (name[0] == "_" or (name[0].isascii() and name[0].isalpha())):
        problems.append(f"service name must start with a letter or '_', not {name[0]!r}")
    bad = sorted({c for c in name[1:] if not _SERVICE_NAME_CHARACTER.fullmatch(c)})
    if bad:
        problems.append(f"service name may contain only letters, digits, '_' and '-', not {bad}")
    raise InvalidInputError(f"{'; '.join(problems)} (name {snippet(name, 60)!r})")


_SERVICE_ID_HINT = (
    "a service_id is the id AiTEMS generated, not the service's name: use the service_id that "
    "AitemsServiceOperator returns, or look the name up with AitemsHook().find_service(name)['serviceId']"
)


def service_id_value(value: Any, field: str = "service_id") -> str:
    """
    A service id for a URL path, from a literal, a rendered template or an upstream result
    (``{"service_id": ...}``, as :class:`~..operators.aitems.AitemsServiceOperator` returns).

    A value that looks like a service name (AiTEMS ids are generated: lowercase letters and
    digits) is refused before any request, saying how to get the id.

    :param field: the parameter's name, for the error.
    :raises InvalidInputError: naming ``field``.
    """
    if isinstance(value, Mapping) and "service_id" in value:
        value = value["service_id"]
    text = path_id(value, field)
    if not _GENERATED_ID.fullmatch(text):
        raise InvalidInputError(
            f"{field} {snippet(text, 60)!r} looks like a service name, not a service id (AiTEMS generates "
            f"ids of lowercase letters and digits): {_SERVICE_ID_HINT}"
        )
    return text


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
    service_id: str,
    train_types: Sequence[str],
    hp_config: Mapping[str, Any] | None,
    description: str | None,
    extra_hp_options: Mapping[str, Any] | None = None,
) -> ApiRequest[dict[str, Any]]:
    """
    A2 Request service training (batch services): one training per type. Not idempotent.

    :param extra_hp_options: see :func:`validate_hp_config`.
    """
    body: dict[str, Any] = {
        "types": validate_train_types(train_types),
        "hpConfig": validate_hp_config(hp_config, extra_hp_options),
    }
    if description:
        body["description"] = description

    def parse(payload: Any) -> dict[str, Any]:
        return payload if isinstance(payload, dict) else {}

    return ApiRequest(
        "Request service training",
        "POST",
        f"/services/{service_id_value(service_id)}",
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
        f"/services/{service_id_value(service_id)}/trains",
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

    path = f"/services/{service_id_value(service_id)}/trains/{train_type}/versions/{path_id(version, 'version')}"
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

DATASET_TYPES = ("user", "item", "interaction")
#: The columns each dataset type must have, in NAVER's words (console guide "Data").
REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "user": ("USER_ID",),
    "item": ("ITEM_ID",),
    "interaction": ("USER_ID", "ITEM_ID", "TIMESTAMP"),
}
#: The type each required column must have in a schema.
REQUIRED_COLUMN_TYPES: Mapping[str, str] = {"USER_ID": "string", "ITEM_ID": "string", "TIMESTAMP": "long"}
FIELD_TYPES = ("string", "int", "long", "boolean", "null")
#: The region a dataset's Object Storage location names: AiTEMS datasets take only ``KR``.
OBJECT_STORAGE_REGION = "KR"
#: Where a schema name is documented (3-20 characters, starting with a letter), the characters
#: after the first are not: letters, digits, ``_`` and ``-`` are allowed (safe in a URL path).
_SCHEMA_NAME_CHARS = re.compile(r"[A-Za-z0-9_-]+")
#: Longest dataset name sent (undocumented; bounded so it stays one readable log line).
MAX_DATASET_NAME = 100
#: S3 bucket naming rules (NCP Object Storage follows them).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: The longest message of a dataset's answer carried into events and errors.
_MESSAGE_LIMIT = 500

DATASET_STATUSES = StatusSets(
    success=frozenset({"enable"}),
    failure=frozenset({"upload_failed", "disable", "deleting"}),
    running=frozenset({"waiting", "processing"}),
)


def validate_dataset_type(value: Any, field: str = "dataset_type") -> str:
    """One of :data:`DATASET_TYPES`, or an error naming ``field`` and the allowed values."""
    if value not in DATASET_TYPES:
        raise InvalidInputError(f"{field} must be one of {list(DATASET_TYPES)}, got {value!r}")
    return str(value)


def validate_schema_name(name: Any, field: str = "schema_name") -> str:
    """A schema name: 3-20 letters, digits, ``_`` or ``-``, starting with a letter; the error says which rule failed."""
    if not isinstance(name, str):
        raise InvalidInputError(f"{field} must be a string, got {type(name).__name__}")
    if not 3 <= len(name) <= 20:
        raise InvalidInputError(f"{field} must be 3 to 20 characters long, got {len(name)}: {name!r}")
    if not name[0].isascii() or not name[0].isalpha():
        raise InvalidInputError(f"{field} must start with a letter (A-Z, a-z), got {name!r}")
    if not _SCHEMA_NAME_CHARS.fullmatch(name):
        bad = next(c for c in name if not _SCHEMA_NAME_CHARS.fullmatch(c))
        raise InvalidInputError(f"{field} may hold only letters, digits, '_' and '-', got {bad!r} in {name!r}")
    return name


def validate_dataset_name(name: Any, field: str = "name") -> str:
    """A dataset name (its rules are undocumented): 1 to :data:`MAX_DATASET_NAME` characters of text."""
    text = sendable_name(name, field)
    if not text.strip() or len(text) > MAX_DATASET_NAME:
        raise InvalidInputError(f"{field} must be 1 to {MAX_DATASET_NAME} characters, got {len(text)}: {text!r}")
    return text


def validate_bucket(bucket: Any, field: str = "bucket") -> str:
    """An Object Storage bucket name (S3 rules: 3-63 lowercase letters, digits, ``.`` or ``-``)."""
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidInputError(
            f"{field} must be a bucket name of 3 to 63 lowercase letters, digits, '.' or '-', "
            f"starting and ending with a letter or digit, got {bucket!r}"
        )
    return bucket


def validate_key(key: Any, field: str = "key") -> str:
    """An object key (or key prefix): text that does not start with ``/``, at most 1,024 bytes."""
    text = sendable_name(key, field)
    if not text or text.startswith("/") or len(text.encode()) > 1024:
        raise InvalidInputError(f"{field} must be an object key of 1 to 1024 bytes not starting with '/', got {key!r}")
    return text


def validate_fields(dataset_type: str, fields: Any, field: str = "fields") -> list[dict[str, Any]]:
    """
    A schema's fields: a non-empty list of ``{"name", "type", "categorical"?}``, names unique,
    types among :data:`FIELD_TYPES`, and the dataset type's :data:`REQUIRED_COLUMNS` present with
    their types. Field order is kept: a file's columns must come in this order.
    """
    dataset_type = validate_dataset_type(dataset_type)
    if isinstance(fields, str | bytes) or not isinstance(fields, Sequence) or not fields:
        raise InvalidInputError(f"{field} must be a non-empty list of {{'name', 'type'}} objects, got {fields!r}")
    checked: list[dict[str, Any]] = []
    for i, item in enumerate(fields):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"{where} must be an object with 'name' and 'type', got {item!r}")
        unknown = sorted(set(item) - {"name", "type", "categorical"})
        if unknown:
            raise InvalidInputError(f"{where} has unknown key(s) {unknown}; allowed: ['name', 'type', 'categorical']")
        name = sendable_name(item.get("name"), f"{where}.name")
        if not name or name != name.strip() or "," in name:
            raise InvalidInputError(
                f"{where}.name must be a column name without ',' or surrounding spaces, got {name!r}"
            )
        kind = item.get("type")
        if kind not in FIELD_TYPES:
            raise InvalidInputError(f"{where}.type must be one of {list(FIELD_TYPES)}, got {kind!r}")
        entry: dict[str, Any] = {"name": name, "type": kind}
        if "categorical" in item:
            if not isinstance(item["categorical"], bool):
                raise InvalidInputError(f"{where}.categorical must be true or false, got {item['categorical']!r}")
            entry["categorical"] = item["categorical"]
        checked.append(entry)
    names = [f["name"] for f in checked]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInputError(f"{field} repeats the column name(s) {repeated}")
    types = {f["name"]: f["type"] for f in checked}
    for column in REQUIRED_COLUMNS[dataset_type]:
        if column not in types:
            near = next((n for n in names if n.lower() == column.lower()), None)
            hint = f" ({near!r} differs in case: names are case-sensitive)" if near else ""
            raise InvalidInputError(f"{field}: the {dataset_type} schema needs the column {column!r}{hint}")
        if types[column] != REQUIRED_COLUMN_TYPES[column]:
            raise InvalidInputError(
                f"{field}: column {column!r} must have type {REQUIRED_COLUMN_TYPES[column]!r}, got {types[column]!r}"
            )
    return checked


def fields_from_header(dataset_type: str, header: Sequence[str], source: str) -> list[dict[str, Any]]:
    """
    A schema for a file, from its header alone: the columns in the file's order, the required
    ones with their types, every other one ``string`` (the only type a header can tell).
    """
    check_header(dataset_type, header, [*REQUIRED_COLUMNS[dataset_type]], source, exact=False)
    fields = [{"name": name, "type": REQUIRED_COLUMN_TYPES.get(name, "string")} for name in header]
    return validate_fields(dataset_type, fields, f"{source}: header")


def check_header(
    dataset_type: str, header: Sequence[str], columns: Sequence[str], source: str, *, exact: bool = True
) -> None:
    """
    Check a file's header against a schema's column names: every column present with the same
    case, in the same order, and (``exact``) nothing else; the error names ``source`` and the column.

    :param columns: the schema's columns in order (with ``exact=False``: columns that must be present).
    :raises InvalidInputError: naming the file and the first column that differs.
    """
    for column in (*REQUIRED_COLUMNS[dataset_type], *columns):
        if column in header:
            continue
        near = next((name for name in header if name.strip().lower() == column.lower()), None)
        if near is not None:
            raise InvalidInputError(
                f"{source}: column {near!r} must be named exactly {column!r} (names are case-sensitive)"
            )
        needs = f"the {dataset_type} data needs" if column in REQUIRED_COLUMNS[dataset_type] else "the schema has"
        raise InvalidInputError(f"{source}: {needs} the column {column!r}, missing from the header {list(header)}")
    if not exact:
        return
    extra = [name for name in header if name not in columns]
    if extra:
        raise InvalidInputError(
            f"{source}: column {extra[0]!r} is not in the schema; the schema's columns are {list(columns)}"
        )
    for position, (found, expected) in enumerate(zip(header, columns, strict=False), start=1):
        if found != expected:
            raise InvalidInputError(
                f"{source}: column {position} is {found!r} but the schema has {expected!r} there: "
                f"the columns must come in the schema's order {list(columns)}"
            )


def _schema_body(dataset_type: str, name: str, fields: Any, description: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "datasetType": validate_dataset_type(dataset_type),
        "name": validate_schema_name(name),
        "fields": validate_fields(dataset_type, fields),
    }
    if description:
        body["description"] = sendable_name(description, "description")
    return body


def _schema(payload: Any, where: str = "") -> dict[str, Any]:
    """A schema of an answer: its ``name`` goes into paths (``GET /schemas/{name}``)."""
    schema = _dict(payload, where)
    if schema.get("name") is not None:
        answer_id(schema["name"], f"{where}.name" if where else "name")
    return dict(schema)


def _listing(key: str, item: Callable[[Any, str], dict[str, Any]]) -> Callable[[Any], list[dict[str, Any]]]:
    """The parser of a listing ``{key: [...], offset, limit}`` (or a bare list), each item checked."""

    def parse(payload: Any) -> list[dict[str, Any]]:
        body = payload if isinstance(payload, list) else _dict(payload).get(key, [])
        if not isinstance(body, list):
            raise AnswerShapeError(key, "a list", body)
        return [item(entry, f"{key}[{i}]") for i, entry in enumerate(body)]

    return parse


def _dataset(payload: Any, where: str = "") -> dict[str, Any]:
    """A dataset of an answer: its ``datasetId`` goes into paths, its status and message into logs and events."""
    dataset = dict(_dict(payload, where))
    prefix = f"{where}." if where else ""
    if dataset.get("datasetId") is not None:
        answer_id(dataset["datasetId"], f"{prefix}datasetId")
    if dataset.get("status") is not None:
        if not isinstance(dataset["status"], str):
            raise AnswerShapeError(f"{prefix}status", "a string", dataset["status"])
        dataset["status"] = snippet(dataset["status"], 200)
    return dataset


def dataset_message(dataset: Mapping[str, Any]) -> str | None:
    """What the service says of a dataset's state (why it failed), on one bounded line; its field is undocumented."""
    for key in ("message", "statusMessage", "errorMessage", "failReason"):
        value = dataset.get(key)
        if isinstance(value, str) and value.strip():
            return snippet(value, _MESSAGE_LIMIT)
    return None


def get_default_schema(dataset_type: str) -> ApiRequest[dict[str, Any]]:
    """The required default schema of a dataset type (``GET /schemas/default``)."""
    params = {"datasetType": validate_dataset_type(dataset_type)}
    return ApiRequest("Get default schema", "GET", "/schemas/default", _dict, params=params)


def create_schema(
    dataset_type: str, name: str, fields: Any, description: str | None = None
) -> ApiRequest[dict[str, Any]]:
    """Create a schema (``POST /schemas``). Not idempotent: a second one is refused by name."""
    body = _schema_body(dataset_type, name, fields, description)
    return ApiRequest("Create schema", "POST", "/schemas", _dict, json=body, idempotent=False, subject=f"schema {name}")


def validate_schema(
    dataset_type: str, name: str, fields: Any, description: str | None = None
) -> ApiRequest[dict[str, Any]]:
    """Ask the service whether a schema body is valid (``POST /schemas/validation-check``); creates nothing."""
    body = _schema_body(dataset_type, name, fields, description)

    def parse(payload: Any) -> dict[str, Any]:
        return payload if isinstance(payload, dict) else {"result": payload}

    path = "/schemas/validation-check"
    return ApiRequest("Validate schema", "POST", path, parse, json=body, subject=f"schema {name}")


def list_schemas(
    dataset_type: str | None = None, *, offset: int = 0, limit: int = 1000
) -> ApiRequest[list[dict[str, Any]]]:
    """List schemas (``GET /schemas``), of one dataset type or all."""
    params: dict[str, str | int | bool] = {"offset": offset, "limit": limit}
    if dataset_type is not None:
        params["datasetType"] = validate_dataset_type(dataset_type)
    return ApiRequest("List schemas", "GET", "/schemas", _listing("schemas", _schema), params=params)


def get_schema(name: str) -> ApiRequest[dict[str, Any]]:
    """Read one schema (``GET /schemas/{schemaName}``)."""
    path = f"/schemas/{path_id(validate_schema_name(name), 'schema_name')}"
    return ApiRequest("Get schema", "GET", path, _schema, subject=f"schema {name}")


def update_schema_description(name: str, description: str) -> ApiRequest[dict[str, Any]]:
    """Change a schema's description (``PUT /schemas/{schemaName}``, body ``{"content": ...}``)."""
    path = f"/schemas/{path_id(validate_schema_name(name), 'schema_name')}"
    body = {"content": sendable_name(description, "description")}

    def parse(payload: Any) -> dict[str, Any]:
        return payload if isinstance(payload, dict) else {}

    return ApiRequest("Edit schema", "PUT", path, parse, json=body, subject=f"schema {name}")


def delete_schema(name: str) -> ApiRequest[dict[str, Any]]:
    """Delete a schema (``DELETE /schemas/{schemaName}``)."""
    path = f"/schemas/{path_id(validate_schema_name(name), 'schema_name')}"

    def parse(payload: Any) -> dict[str, Any]:
        return payload if isinstance(payload, dict) else {}

    return ApiRequest("Delete schema", "DELETE", path, parse, subject=f"schema {name}")


def create_dataset(
    dataset_type: str,
    name: str,
    schema_name: str,
    bucket: str,
    key: str,
    description: str | None = None,
) -> ApiRequest[dict[str, Any]]:
    """
    Register a dataset from Object Storage (``POST /datasets``); ``key`` is a file or a prefix.
    Not idempotent: a lost answer is reconciled by the dataset's name.
    """
    body: dict[str, Any] = {
        "type": validate_dataset_type(dataset_type),
        "name": validate_dataset_name(name),
        "schemaName": validate_schema_name(schema_name),
        "osInfo": {"region": OBJECT_STORAGE_REGION, "bucket": validate_bucket(bucket), "key": validate_key(key)},
    }
    if description:
        body["description"] = sendable_name(description, "description")

    def parse(payload: Any) -> dict[str, Any]:
        dataset = _dataset(payload)
        answer_id(dataset.get("datasetId"), "datasetId")  # what the task returns and waits on
        return dataset

    return ApiRequest(
        "Create dataset", "POST", "/datasets", parse, json=body, idempotent=False, subject=f"dataset {name}"
    )


def list_datasets(*, offset: int = 0, limit: int = 1000) -> ApiRequest[list[dict[str, Any]]]:
    """List datasets (``GET /datasets``), each with its ``datasetId``, ``type``, ``name`` and ``status``."""
    params: dict[str, str | int | bool] = {"offset": offset, "limit": limit}
    return ApiRequest("List datasets", "GET", "/datasets", _listing("datasets", _dataset), params=params)


def get_dataset(dataset_id: str) -> ApiRequest[dict[str, Any]]:
    """Read one dataset (``GET /datasets/{datasetId}``): its ``status`` is what a dataset wait polls."""
    dataset_id = path_id(dataset_id, "dataset_id")

    def parse(payload: Any) -> dict[str, Any]:
        dataset = _dataset(payload)
        if not isinstance(dataset.get("status"), str):
            raise AnswerShapeError("status", "a string", dataset.get("status"))
        return dataset

    return ApiRequest("Get dataset", "GET", f"/datasets/{dataset_id}", parse, subject=f"dataset_id={dataset_id}")


def delete_dataset(dataset_id: str) -> ApiRequest[dict[str, Any]]:
    """Delete a dataset (``DELETE /datasets/{datasetId}``)."""
    dataset_id = path_id(dataset_id, "dataset_id")

    def parse(payload: Any) -> dict[str, Any]:
        return payload if isinstance(payload, dict) else {}

    return ApiRequest("Delete dataset", "DELETE", f"/datasets/{dataset_id}", parse, subject=f"dataset_id={dataset_id}")


# --- services ---

#: "The service can learn" (NAVER lists the statuses without their meanings; this reading is ours):
#: ``learnable`` once its three datasets are linked, and an interval service that is
#: ``scheduled`` (or learning on its schedule) keeps learning on its cycle. ``datasetRequired``
#: is waited on: right after linking the service still says it for a moment (the wait's
#: timeout bounds it), and a training in progress ends ``learnable`` again. ``drafted`` is
#: undocumented and waited on. A disabled or deleted service never learns.
SERVICE_STATUSES = StatusSets(
    success=frozenset({"learnable", "scheduled", "scheduledLearning"}),
    failure=frozenset({"disable", "deleting", "deleted"}),
    running=frozenset({"datasetRequired", "drafted", "requestLearning", "learning"}),
)
#: while a service has one of these, NAVER refuses to link datasets ("not while scheduled or training")
SERVICE_BUSY_STATUSES = frozenset({"requestLearning", "learning", "scheduled", "scheduledLearning"})


def get_service(service_id: str) -> ApiRequest[dict[str, Any]]:
    """Read one service (``GET /services/{serviceId}``): its ``status`` is what a service wait polls."""
    service_id = service_id_value(service_id)

    def parse(payload: Any) -> dict[str, Any]:
        service = _service(payload)
        if not isinstance(service.get("status"), str):
            raise AnswerShapeError("status", "a string", service.get("status"))
        # The status reaches logs and trigger events: one line, bounded.
        return {**service, "status": snippet(service["status"], 200)}

    return ApiRequest("Get service", "GET", f"/services/{service_id}", parse, subject=f"service_id={service_id}")


def linked_dataset_ids(dataset_ids: Any) -> list[str]:
    """
    The three datasets a service is linked to, as the request sends them.

    :param dataset_ids: ``{"user": id, "item": id, "interaction": id}`` (the types checked), or
        three ids whose types the service checks.
    :raises InvalidInputError: naming what is missing, repeated or not an id.
    """
    if isinstance(dataset_ids, Mapping):
        keys = set(dataset_ids)
        if keys != set(DATASET_TYPES):
            missing, extra = sorted(set(DATASET_TYPES) - keys), sorted(str(k) for k in keys - set(DATASET_TYPES))
            raise InvalidInputError(
                f"dataset_ids needs exactly one dataset per type {list(DATASET_TYPES)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; not a dataset type: {extra}" if extra else "")
            )
        ids = [path_id(dataset_ids[t], f"dataset_ids[{t!r}]") for t in DATASET_TYPES]
    elif isinstance(dataset_ids, Sequence) and not isinstance(dataset_ids, str):
        ids = [path_id(value, f"dataset_ids[{i}]") for i, value in enumerate(dataset_ids)]
        if len(ids) != len(DATASET_TYPES):
            raise InvalidInputError(
                f"dataset_ids needs exactly {len(DATASET_TYPES)} datasets, one user, one item and one "
                f"interaction dataset, got {len(ids)}"
            )
    else:
        raise InvalidInputError(f"dataset_ids must be a mapping of dataset type to id or a list, got {dataset_ids!r}")
    if len(set(ids)) != len(ids):
        raise InvalidInputError(f"dataset_ids repeats a dataset: {ids}")
    return ids


def link_datasets(service_id: str, dataset_ids: Any) -> ApiRequest[dict[str, Any]]:
    """
    Link a service to its user, item and interaction datasets (``POST /services/{serviceId}/datasets``).

    Sending the same links again changes nothing, so a lost answer is simply asked again.

    :param dataset_ids: see :func:`linked_dataset_ids`.
    """
    service_id = service_id_value(service_id)
    body = {"datasetIds": linked_dataset_ids(dataset_ids)}

    def parse(payload: Any) -> dict[str, Any]:
        return dict(payload) if isinstance(payload, dict) else {"result": payload}

    path = f"/services/{service_id}/datasets"
    return ApiRequest("Link datasets", "POST", path, parse, json=body, subject=f"service_id={service_id}")


def delete_service(service_id: str) -> ApiRequest[dict[str, Any]]:
    """Delete a service (``DELETE /services/{serviceId}``, answers ``{"result": "ok"}``)."""
    service_id = service_id_value(service_id)

    def parse(payload: Any) -> dict[str, Any]:
        return dict(payload) if isinstance(payload, dict) else {}

    return ApiRequest("Delete service", "DELETE", f"/services/{service_id}", parse, subject=f"service_id={service_id}")


# --- interval ---

#: The update cycles of an interval service (``PUT /services/{serviceId}/interval``).
INTERVAL_TERMS = ("hour1", "hour3", "hour6", "hour12")
#: What ``PUT /services/{serviceId}/schedule?action=`` takes.
SCHEDULE_ACTIONS = ("start", "stop")
#: The service statuses of a started cycle (a start whose answer was lost is found by them).
SCHEDULED_SERVICE_STATUSES = frozenset({"scheduled", "scheduledLearning"})
#: Most rows one push carries. NAVER documents no limit; the gateway refuses big bodies (413),
#: so a batch is bounded here, before anything is sent.
MAX_PUSH_ROWS = 10_000
#: Our pseudo-status (no vendor word) of an update that the history does not list yet.
UPDATE_NOT_LISTED = "notListed"
#: HTTP statuses of an answer that refused a push before it was applied: the gateway's 429
#: (quota, throttle, rate) and an endpoint's 500 or 503. Any other failure after the rows were
#: sent (no answer, a read timeout, a gateway's 502 or 504) leaves the push in doubt.
PUSH_REFUSED_STATUSES = frozenset({429, 500, 503})

#: An incremental update's statuses. NAVER documents only the field ("update status") and shows
#: ``updating`` in its example; an update applies pushed rows to a training version, so the
#: training's words are taken for the rest: ``completed`` is the success, ``*Failed`` (and
#: ``failed``) failures, ``ready``/``waiting``/``requesting``/``learning`` still running, and
#: :data:`UPDATE_NOT_LISTED` while the history does not list the update. Any other status is
#: waited on with a warning; the sets can be replaced on the sensor.
UPDATE_STATUSES = StatusSets(
    success=frozenset({"completed"}),
    failure=frozenset({"failed", "updateFailed", "requestFailed", "refinedFailed", "learningFailed"}),
    running=frozenset({"ready", "waiting", "requesting", "updating", "learning", UPDATE_NOT_LISTED}),
)


def validate_term(term: Any, field: str = "term") -> str:
    """An update cycle: one of :data:`INTERVAL_TERMS`, or an error naming ``field`` and the allowed values."""
    if term not in INTERVAL_TERMS:
        raise InvalidInputError(f"{field} must be one of {list(INTERVAL_TERMS)}, got {term!r}")
    return str(term)


def validate_batch_size(value: Any, field: str = "batch_size") -> int:
    """Rows per push: an integer from 1 to :data:`MAX_PUSH_ROWS`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PUSH_ROWS:
        raise InvalidInputError(f"{field} must be an integer from 1 to {MAX_PUSH_ROWS}, got {value!r}")
    return value


def validate_row(dataset_type: str, row: Any, where: str) -> dict[str, Any]:
    """
    One row to push: a JSON object of string column names with the dataset type's required
    columns, ``USER_ID``/``ITEM_ID`` non-empty text and ``TIMESTAMP`` an integer.

    :param where: the row's place (``rows.csv line 12``), named in the error.
    :raises InvalidInputError: naming ``where`` and the column.
    """
    if not isinstance(row, Mapping):
        raise InvalidInputError(f"{where}: a row must be a JSON object of column values, got {kind_of(row)}")
    for column in REQUIRED_COLUMNS[dataset_type]:
        if column not in row:
            near = next((str(k) for k in row if str(k).strip().lower() == column.lower()), None)
            hint = f" ({near!r} differs: column names are case-sensitive)" if near else ""
            raise InvalidInputError(f"{where}: the {dataset_type} row needs the column {column!r}{hint}")
        value = row[column]
        if column == "TIMESTAMP":
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(
                    f"{where}: TIMESTAMP must be an integer (a long), got {snippet(repr(value), 60)}"
                )
        elif not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{where}: {column} must be non-empty text, got {snippet(repr(value), 60)}")
    bad = next((k for k in row if not isinstance(k, str) or not k), None)
    if bad is not None:
        raise InvalidInputError(f"{where}: column names must be non-empty text, got {bad!r}")
    return dict(row)


def set_interval(service_id: str, term: str) -> ApiRequest[dict[str, Any]]:
    """
    Set an interval service's update cycle (``PUT /services/{serviceId}/interval``). Setting the
    same cycle again changes nothing, so a lost answer is simply asked again.
    """
    service_id = service_id_value(service_id)
    body = {"term": validate_term(term)}

    def parse(payload: Any) -> dict[str, Any]:
        return dict(payload) if isinstance(payload, dict) else {}

    path = f"/services/{service_id}/interval"
    return ApiRequest("Set interval", "PUT", path, parse, json=body, subject=f"service_id={service_id}")


def schedule(
    service_id: str,
    action: str,
    train_types: Sequence[str] | None = None,
    hp_config: Mapping[str, Any] | None = None,
    description: str | None = None,
    extra_hp_options: Mapping[str, Any] | None = None,
) -> ApiRequest[dict[str, Any]]:
    """
    Start or stop an interval service's cycle training (``PUT /services/{serviceId}/schedule``).

    ``action`` goes in the query, which the signature covers (:attr:`ApiRequest.target` is what is
    signed and sent). A start carries the train types and HPO settings; a stop carries no body.
    Not idempotent: a second start (or stop) is refused, so a lost answer is reconciled by the
    service's status.
    """
    service_id = service_id_value(service_id)
    if action not in SCHEDULE_ACTIONS:
        raise InvalidInputError(f"action must be one of {list(SCHEDULE_ACTIONS)}, got {action!r}")
    body: dict[str, Any] | None = None
    if action == "start":
        body = {
            "trainTypes": validate_train_types(train_types),
            "hpConfig": validate_hp_config(hp_config, extra_hp_options),
        }
        if description:
            body["description"] = sendable_name(description, "description")

    def parse(payload: Any) -> dict[str, Any]:
        return dict(payload) if isinstance(payload, dict) else {}

    return ApiRequest(
        "Schedule training",
        "PUT",
        f"/services/{service_id}/schedule",
        parse,
        params={"action": action},
        json=body,
        idempotent=False,
        subject=f"service_id={service_id}",
    )


def push_rows(
    service_id: str, dataset_id: str, dataset_type: str, rows: Sequence[Mapping[str, Any]]
) -> ApiRequest[None]:
    """
    Add rows to an interval service's dataset (``POST /services/{serviceId}/datasets/{datasetId}``,
    answers ``true``). Not idempotent: the service keeps what it was sent, twice if sent twice,
    and offers no read-back, so a push whose answer was lost is in doubt (see
    :meth:`~..hooks.aitems.AitemsHook.push_rows`).

    :param rows: 1 to :data:`MAX_PUSH_ROWS` rows, each checked with :func:`validate_row`.
    """
    service_id = service_id_value(service_id)
    dataset_id = path_id(dataset_id, "dataset_id")
    dataset_type = validate_dataset_type(dataset_type)
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence) or not rows:
        raise InvalidInputError(f"rows must be a non-empty list of row objects, got {kind_of(rows)}")
    if len(rows) > MAX_PUSH_ROWS:
        raise InvalidInputError(f"rows: one push takes at most {MAX_PUSH_ROWS} rows, got {len(rows)}")
    checked = [validate_row(dataset_type, row, f"rows[{i}]") for i, row in enumerate(rows)]
    body = {"type": dataset_type, "value": checked}

    def parse(payload: Any) -> None:
        if payload is not True:
            raise AnswerShapeError("", "true", payload)

    return ApiRequest(
        "Push rows",
        "POST",
        f"/services/{service_id}/datasets/{dataset_id}",
        parse,
        json=body,
        idempotent=False,
        subject=f"service_id={service_id}, dataset_id={dataset_id}",
    )


def push_refused(exc: BaseException) -> bool:
    """Whether a failed push certainly was not applied: an answer refused it (:data:`PUSH_REFUSED_STATUSES`)."""
    return isinstance(exc, ApiError) and exc.transient and exc.http_status in PUSH_REFUSED_STATUSES


def push_in_doubt(exc: BaseException) -> bool:
    """
    Whether a failed push may have been applied: no answer came, or a transient one other than
    a refusal (a gateway's 502/504), or a 2xx answer that could not be read.
    """
    if not isinstance(exc, ApiError) or push_refused(exc):
        return False
    return exc.transient or (exc.http_status is not None and 200 <= exc.http_status < 300)


def _update(payload: Any, where: str) -> dict[str, Any]:
    """An update of the history: its version names it in events, its status goes into logs."""
    update = dict(_dict(payload, where))
    if update.get("updateVersion") is not None:
        update["updateVersion"] = answer_id(update["updateVersion"], f"{where}.updateVersion")
    if not isinstance(update.get("status"), str):
        raise AnswerShapeError(f"{where}.status", "a string", update.get("status"))
    update["status"] = snippet(update["status"], 200)
    return update


def list_updates(service_id: str, train_type: str, train_version: str) -> ApiRequest[list[dict[str, Any]]]:
    """
    The incremental-update history of one training version (``GET /services/{serviceId}/updates``;
    NAVER requires both ``type`` and ``trainVersion``): ``updateVersion``, ``status``, dates and
    ``updateResult`` (row, user and item counts) of each update.
    """
    service_id = service_id_value(service_id)
    if train_type not in TRAIN_TYPES:
        raise InvalidInputError(f"train_type must be one of {list(TRAIN_TYPES)}, got {train_type!r}")
    params = {"type": train_type, "trainVersion": path_id(train_version, "train_version")}
    return ApiRequest(
        "List updates",
        "GET",
        f"/services/{service_id}/updates",
        _listing("updates", _update),
        params=params,
        subject=f"service_id={service_id}",
    )


def find_update(updates: Sequence[Mapping[str, Any]], update_version: str | None) -> Mapping[str, Any] | None:
    """
    The update named ``update_version`` in a history, or (``None``) the newest: the latest
    ``createdDate`` (ISO dates compare as text), the later in the list on a tie.
    """
    if update_version is not None:
        return next((u for u in updates if str(u.get("updateVersion")) == str(update_version)), None)
    newest: Mapping[str, Any] | None = None
    for update in updates:
        if newest is None or str(update.get("createdDate") or "") >= str(newest.get("createdDate") or ""):
            newest = update
    return newest


# --- recommendations ---

#: Recommendations one lookup may answer: NAVER caps ``max_user_recommend_top`` and
#: ``max_relate_recommend_top`` at 1,000, so more is a broken answer, not a big one.
MAX_LOOKUP_VALUES = 1000
#: Longest USER_ID / ITEM_ID accepted, sent or read (NAVER states no limit; ids are short keys).
MAX_TARGET_ID_LENGTH = 256
#: What a lookup's ``field`` may say its values are.
LOOKUP_FIELDS = ("ITEM_ID", "USER_ID")


def target_id_value(value: Any, field: str) -> str:
    """
    A USER_ID or ITEM_ID to send as ``targetId`` or read from an answer: a string (or an
    integer) of 1 to :data:`MAX_TARGET_ID_LENGTH` characters without control characters, so
    that it cannot break a log line or an output row.

    :param field: what it is, named in the error (``targets line 12``, ``values[3]``).
    :raises InvalidInputError: naming ``field`` and the rule.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a USER_ID or ITEM_ID (a string), got {type(value).__name__}")
    if not value or len(value) > MAX_TARGET_ID_LENGTH:
        raise InvalidInputError(
            f"{field} must be an id of 1 to {MAX_TARGET_ID_LENGTH} characters, got {len(value)} characters"
        )
    if not value.isprintable():  # one call for the whole id: a lookup's answer holds up to 1,000
        bad = next(c for c in value if not c.isprintable())
        raise InvalidInputError(f"{field} holds the control character U+{ord(bad):04X}; ids are printable text")
    return value


def lookup(service_id: str, train_type: str, target_id: str | None = None) -> ApiRequest[dict[str, Any]]:
    """
    Recommendations lookup (``GET /services/{id}/infers/lookup?type=&targetId=``): the
    recommendations of one user (``personalRecommend``), one item (``relatedItem``) or the
    popular items (``pop``, sent without ``targetId``). NAVER labels it a test of the training
    result. Answers ``{"field": "ITEM_ID" | "USER_ID", "values": [id, ...]}``, checked and bounded
    (at most :data:`MAX_LOOKUP_VALUES` ids, each as :func:`target_id_value` allows). A pure read.
    """
    if train_type not in TRAIN_TYPES:
        raise InvalidInputError(f"train_type must be one of {list(TRAIN_TYPES)}, got {train_type!r}")
    params: dict[str, str] = {"type": train_type}
    if train_type != "pop":
        if target_id is None:
            raise InvalidInputError(f"a {train_type} lookup needs a target_id (a USER_ID or ITEM_ID)")
        params["targetId"] = target_id_value(target_id, "target_id")

    def parse(payload: Any) -> dict[str, Any]:
        body = _dict(payload)
        kind, values = body.get("field"), body.get("values")
        if kind not in LOOKUP_FIELDS:
            raise AnswerFieldError("field", f"one of {list(LOOKUP_FIELDS)}", kind_of(kind))
        if not isinstance(values, list):
            raise AnswerShapeError("values", "a list", values)
        if len(values) > MAX_LOOKUP_VALUES:
            raise AnswerFieldError("values", f"a list of at most {MAX_LOOKUP_VALUES} ids", kind_of(values))
        checked = []
        for i, value in enumerate(values):
            try:
                checked.append(target_id_value(value, f"values[{i}]"))
            except InvalidInputError:  # its text may quote nothing of the answer: say the kind only
                raise AnswerFieldError(
                    f"values[{i}]", f"an id of 1 to {MAX_TARGET_ID_LENGTH} printable characters", kind_of(value)
                ) from None
        return {"field": kind, "values": checked}

    subject = "pop" if train_type == "pop" else f"{train_type} target"
    return ApiRequest(
        "Recommendations lookup",
        "GET",
        f"/services/{service_id_value(service_id)}/infers/lookup",
        parse,
        params=params,
        subject=subject,
    )


# --- errors ---------------------------------------------------------------------------------------

_STATUS_ERRORS: Mapping[int, tuple[type[ApiError], str]] = {
    400: (BadRequestError, "the gateway refused the request as malformed"),
    401: (AuthenticationError, "the signature, access key or timestamp was refused"),
    403: (AuthenticationError, "the access key may not use this API"),
    404: (NotFoundError, "the service, training or version does not exist"),
}
#: The gateway's three 429 answers, by errorCode: each is worth waiting out, so each is transient.
_THROTTLE_CODES: Mapping[str, str] = {
    "400": "the account's API quota is exceeded",
    "410": "the gateway is throttling this access key",
    "420": "the gateway's rate limit was reached",
}
#: What a refused signature (401, errorCode 200) means when the gateway says it was the timestamp.
_CLOCK_SKEW = (
    "the gateway refused the request's timestamp: the worker's clock is more than 5 minutes away from "
    "NCP's; check the worker's clock (NTP), the keys are not the cause"
)
_CLOCK_WORDS = re.compile(r"timestamp|clock", re.IGNORECASE)


def map_error(request: ApiRequest[Any], status: int, payload: Any, text: str) -> ApiError | None:
    """Map an API Gateway / AiTEMS error answer (``{"error": {"errorCode", "message", "details"}}``)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    code, message, details = error.get("errorCode"), error.get("message"), error.get("details")
    vendor = snippet(" — ".join(str(p) for p in (message, details) if p) or text)
    what = f"{request.label} failed (HTTP {status}, errorCode {code}): {vendor}"
    if status == 429 and str(code) in _THROTTLE_CODES:
        what = f"{what} — {_THROTTLE_CODES[str(code)]}; retried after a pause"
    if status == 429 or status >= 500:
        return TransientApiError(what, endpoint=request.name, http_status=status, code=code, vendor_message=message)
    cls, meaning = _STATUS_ERRORS.get(status, (BadRequestError, "the request was refused"))
    if status == 404 and request.path.startswith("/services/"):
        # A name that passes for an id (lowercase letters and digits) reaches the service: say what an id is.
        meaning += f"; {_SERVICE_ID_HINT}"
    if status == 401 and str(code) == "200":
        # One code for a bad signature and a skewed clock: the gateway's words tell them apart.
        skewed = _CLOCK_WORDS.search(vendor) is not None
        meaning = _CLOCK_SKEW if skewed else f"{meaning} (if the keys are right, check the worker's clock: NTP)"
    return cls(f"{what} — {meaning}", endpoint=request.name, http_status=status, code=code, vendor_message=message)
