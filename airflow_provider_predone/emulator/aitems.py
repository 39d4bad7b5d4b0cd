"""The NAVER Cloud AiTEMS API (``/api/v1/...``) behind an API Gateway signature v2 check."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import io
import json
import re
import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .errors import ApiError
from .runtime import Runtime, Timeline

PREFIX = "/api/v1"
TIMESTAMP_WINDOW_MS = 5 * 60 * 1000
TRAIN_TYPES = ("personalRecommend", "relatedItem", "pop")
_SERVICE_TYPES = ("batch", "interval")
#: the most permissive of NAVER's pages: ``-`` allowed
_SERVICE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{2,19}")
_FAIL_MARKER = re.compile(r"\[emulator-fail:(\w+)(?::(\w+))?\]")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_GATEWAY_ERRORS = {
    400: ("100", "Bad Request"),
    401: ("200", "Authentication Failed"),
    404: ("300", "Not Found"),
}


class GatewayError(ApiError):
    """``{"error": {"errorCode", "message", "details"}}`` in the NCP API Gateway style."""

    def __init__(self, status: int, details: str, code: str | None = None) -> None:
        super().__init__(details)
        self.status, self.details, self.code = status, details, code

    def response(self) -> web.Response:
        code, message = _GATEWAY_ERRORS[self.status] if self.code is None else (self.code, THROTTLE_CODES[self.code])
        body = {"error": {"errorCode": code, "message": message, "details": self.details}}
        return web.json_response(body, status=self.status)


def signature_v2(secret_key: str, method: str, uri: str, timestamp: str, access_key: str) -> str:
    """base64(HMAC-SHA256(secret, ``METHOD URI\\nTIMESTAMP\\nACCESS_KEY``)).

    :param uri: the path including ``/api/v1`` and the query string as sent.
    """
    message = f"{method} {uri}\n{timestamp}\n{access_key}".encode()
    return base64.b64encode(hmac.new(secret_key.encode(), message, hashlib.sha256).digest()).decode()


def _timestamp(moment: float) -> str:
    """``2024-07-30T11:25:36.558``, the AiTEMS date format (UTC here)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(11))


@dataclass
class Service:
    service_id: str
    name: str
    description: str
    type: str
    created: float
    trainings: list[Training] = field(default_factory=list)
    #: dataset type -> id, and when they were linked (see the services section)
    dataset_ids: dict[str, str] = field(default_factory=dict)
    linked: Timeline | None = None
    #: interval services (see the interval section): the update cycle and the started cycle training
    interval: str | None = None
    schedule: Schedule | None = None
    scheduled_date: float | None = None

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "serviceId": self.service_id,
            "name": self.name,
            "description": self.description,
            "type": self.type,
            "status": service_status(self, now),
            "createdDate": _timestamp(self.created),
            **self.interval_fields(),
        }

    def interval_fields(self) -> dict[str, Any]:
        """What an interval service adds: ``learningInterval`` and ``scheduledDate``."""
        if self.type != "interval":
            return {}
        scheduled = _timestamp(self.scheduled_date) if self.scheduled_date is not None else None
        return {"learningInterval": self.interval, "scheduledDate": scheduled}


@dataclass
class Training:
    service_id: str
    type: str
    version: str
    description: str
    hp_config: dict[str, Any]
    timeline: Timeline
    final_status: str

    def describe(self, now: float) -> dict[str, Any]:
        stage = self.timeline.stage(now)
        status = ("requesting", "learning", self.final_status)[stage]
        return {
            "serviceId": self.service_id,
            "type": self.type,
            "hpConfig": self.hp_config,
            "version": self.version,
            "description": self.description,
            "status": status,
            "createdDate": _timestamp(self.timeline.started),
            "inference": status == "completed",
        }


def _final_status(description: str, train_type: str) -> str:
    """``completed``, unless the description asks for a failure of this type (or of all types)."""
    for status, only_type in _FAIL_MARKER.findall(description):
        if not only_type or only_type == train_type:
            return str(status)
    return "completed"


def _require(condition: bool, details: str) -> None:
    if not condition:
        raise GatewayError(400, details)


class Aitems:
    """State and handlers of the AiTEMS API."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        # Kept for the server's life (their routes are bound to them); reset() empties them.
        self.gateway = GatewayControls(runtime)
        self.data = Datasets(self)
        self.reset()

    def reset(self) -> None:
        self.services: dict[str, Service] = {}
        self.trainings: dict[tuple[str, str, str], Training] = {}
        self.gateway.reset()
        self.data.reset()
        self.recommendations = Recommendations(self)
        self.interval = IntervalRoutes(self)

    def finish_jobs(self) -> int:
        """Every training still running ends now, with its final status."""
        now = self._runtime.now()
        running = [training for training in self.trainings.values() if training.timeline.stage(now) < 2]
        for training in running:
            training.timeline = training.timeline.ended_by(now)
        return len(running)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{PREFIX}/services", self.create_service),
            web.get(f"{PREFIX}/services", self.list_services),
            web.get(f"{PREFIX}/services/{{service_id}}", self.get_service),
            web.post(f"{PREFIX}/services/{{service_id}}", self.request_training),
            web.get(f"{PREFIX}/services/{{service_id}}/trains", self.list_trainings),
            web.get(
                f"{PREFIX}/services/{{service_id}}/trains/{{train_type}}/versions/{{version}}",
                self.get_training,
            ),
            # --- data (schemas and datasets) routes ---
            *self.data.routes(),
            # --- services routes ---
            *ServiceRoutes(self).routes(),
            # --- interval routes ---
            *self.interval.routes(),
            # --- recommendations routes ---
            *self.recommendations.routes(),
        ]

    def _authenticate(self, request: web.Request) -> None:
        headers = request.headers
        timestamp = headers.get("x-ncp-apigw-timestamp", "")
        access_key = headers.get("x-ncp-iam-access-key", "")
        given = headers.get("x-ncp-apigw-signature-v2", "")
        self.gateway.check()
        if not (timestamp and access_key and given):
            raise GatewayError(401, "missing authentication headers")
        config = self._runtime.config
        if not hmac.compare_digest(access_key, config.aitems_access_key):
            raise GatewayError(401, "unknown access key")
        expected = signature_v2(config.aitems_secret_key, request.method, request.raw_path, timestamp, access_key)
        if not hmac.compare_digest(expected, given):
            raise GatewayError(401, "signature mismatch")
        if not timestamp.isdigit() or abs(int(timestamp) - self.gateway.now() * 1000) > TIMESTAMP_WINDOW_MS:
            raise GatewayError(401, "timestamp is more than 5 minutes away from the gateway clock")

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise GatewayError(400, "the body is not JSON") from None
        _require(isinstance(body, dict), "the body is not a JSON object")
        return dict(body)

    def _service(self, request: web.Request) -> Service:
        self._authenticate(request)
        service = self.services.get(request.match_info["service_id"])
        if service is None:
            raise GatewayError(404, "service not found")
        return service

    async def create_service(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        body = await self._body(request)
        name, description = body.get("name"), body.get("description", "")
        _require(isinstance(name, str), "name must be a string")
        assert isinstance(name, str)
        _require(3 <= len(name) <= 20, "name must be 3 to 20 characters long")
        _require(
            _SERVICE_NAME.fullmatch(name) is not None,
            "name must start with a letter or '_' and hold only letters, digits, '_' or '-'",
        )
        _require(isinstance(description, str), "invalid description")
        _require(body.get("type") in _SERVICE_TYPES, "type must be batch or interval")
        _require(all(s.name != name for s in self.services.values()), "a service with this name already exists")
        service = Service(_new_id(), str(name), str(description), str(body["type"]), self._runtime.now())
        self.services[service.service_id] = service
        return web.json_response(service.describe(self._runtime.now()))

    async def list_services(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        newest_first = sorted(self.services.values(), key=lambda s: s.created, reverse=True)
        now = self._runtime.now()
        return web.json_response({"services": [s.describe(now) for s in newest_first]})

    async def get_service(self, request: web.Request) -> web.Response:
        return web.json_response(self._service(request).describe(self._runtime.now()))

    async def request_training(self, request: web.Request) -> web.Response:
        service = self._service(request)
        body = await self._body(request)
        types, description = body.get("types"), body.get("description", "")
        hp_config = body.get("hpConfig", {"is_enabled": False})
        _require(
            isinstance(types, list) and bool(types) and all(t in TRAIN_TYPES for t in types),
            f"types must be a non-empty list of {', '.join(TRAIN_TYPES)}",
        )
        _require(isinstance(description, str), "invalid description")
        _require(
            isinstance(hp_config, dict) and isinstance(hp_config.get("is_enabled"), bool),
            "hpConfig.is_enabled must be a boolean",
        )
        assert isinstance(types, list)
        timeline = Timeline(self._runtime.now(), self._runtime.config.job_seconds)
        for train_type in types:
            training = Training(
                service.service_id,
                train_type,
                _new_id(),
                str(description),
                hp_config,
                timeline,
                _final_status(str(description), train_type),
            )
            service.trainings.append(training)
            self.trainings[service.service_id, train_type, training.version] = training
        self._runtime.counters.aitems_trainings_started += len(types)
        return web.json_response({"serviceId": service.service_id, "description": description})

    async def list_trainings(self, request: web.Request) -> web.Response:
        service = self._service(request)
        try:
            offset = int(request.query.get("offset", 0))
            limit = int(request.query.get("limit", 1000))
        except ValueError:
            raise GatewayError(400, "offset and limit must be integers") from None
        recent_only = request.query.get("isRecent", "false").lower() == "true"
        newest_first = service.trainings[::-1]
        if recent_only:
            newest_per_type: dict[str, Training] = {}
            for training in newest_first:
                newest_per_type.setdefault(training.type, training)
            newest_first = list(newest_per_type.values())
        now = self._runtime.now()
        page = [training.describe(now) for training in newest_first[offset : offset + limit]]
        return web.json_response({"trains": page, "offset": offset, "limit": limit})

    async def get_training(self, request: web.Request) -> web.Response:
        service = self._service(request)
        key = (service.service_id, request.match_info["train_type"], request.match_info["version"])
        training = self.trainings.get(key)
        if training is None:
            raise GatewayError(404, "training not found")
        return web.json_response(training.describe(self._runtime.now()))


# --- data (schemas and datasets) ---

DATASET_TYPES = ("user", "item", "interaction")
#: Each dataset type's required columns and their types (console guide "Data").
REQUIRED_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "user": (("USER_ID", "string"),),
    "item": (("ITEM_ID", "string"),),
    "interaction": (("USER_ID", "string"), ("ITEM_ID", "string"), ("TIMESTAMP", "long")),
}
FIELD_TYPES = ("string", "int", "long", "boolean", "null")
#: 3-20 characters starting with a letter (NAVER); the rest is undocumented: letters, digits, ``_``, ``-``.
_SCHEMA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{2,19}")
#: Emulator bounds (NAVER documents none): schemas and datasets kept, rows kept per dataset.
MAX_SCHEMAS = 1000
MAX_DATASETS = 1000
MAX_DATASET_ROWS = 200_000
#: The gateway's 429 answers, by errorCode (what the throttle test control answers).
THROTTLE_CODES = {"400": "Quota Exceeded", "410": "Throttle Limited", "420": "Rate Limited"}
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


@dataclass
class Schema:
    dataset_type: str
    name: str
    fields: list[dict[str, Any]]
    description: str
    created: float

    @property
    def columns(self) -> list[str]:
        return [str(f["name"]) for f in self.fields]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "datasetType": self.dataset_type,
            "fields": self.fields,
            "description": self.description,
            "createdDate": _timestamp(self.created),
        }


@dataclass
class Dataset:
    """A registered dataset: ``waiting`` → ``processing`` → ``enable`` (or ``upload_failed``) on its timeline.

    :param outcome: the final status and message, once its files were read (``None`` until then).
    :param rows: the parsed rows (values typed by the schema), once ``enable``.
    """

    dataset_id: str
    type: str
    name: str
    schema_name: str
    description: str
    bucket: str
    key: str
    timeline: Timeline
    outcome: tuple[str, str] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    connected_services: list[str] = field(default_factory=list)

    def status(self, now: float) -> str:
        stage = self.timeline.stage(now)
        if stage == 0:
            return "waiting"
        return self.outcome[0] if stage == 2 and self.outcome is not None else "processing"

    def describe(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        answer = {
            "datasetId": self.dataset_id,
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "schemaName": self.schema_name,
            "status": status,
            "osInfo": {"region": "KR", "bucket": self.bucket, "key": self.key},
            "connectedServices": list(self.connected_services),
            "createdDate": _timestamp(self.timeline.started),
            "updatedDate": _timestamp(min(now, self.timeline.started + self.timeline.seconds)),
        }
        if self.outcome is not None and status == self.outcome[0] and self.outcome[1]:
            answer["message"] = self.outcome[1]
        return answer


class DatasetFileError(ValueError):
    """A dataset's file breaks a data rule; the message names the file, the line and the problem."""


def _schema_fields(dataset_type: Any, fields: Any) -> list[dict[str, Any]]:
    """The fields of a schema body, checked as the service checks them."""
    _require(dataset_type in DATASET_TYPES, f"datasetType must be one of {', '.join(DATASET_TYPES)}")
    _require(isinstance(fields, list) and bool(fields), "fields must be a non-empty list")
    checked: list[dict[str, Any]] = []
    for i, item in enumerate(fields):
        _require(isinstance(item, dict), f"fields[{i}] must be an object")
        name, kind = item.get("name"), item.get("type")
        _require(isinstance(name, str) and bool(name.strip()), f"fields[{i}].name must be a non-empty string")
        _require(kind in FIELD_TYPES, f"fields[{i}].type must be one of {', '.join(FIELD_TYPES)}")
        _require(isinstance(item.get("categorical", False), bool), f"fields[{i}].categorical must be a boolean")
        checked.append({k: item[k] for k in ("name", "type", "categorical") if k in item})
    names = [f["name"] for f in checked]
    _require(len(set(names)) == len(names), "field names must be unique")
    types = {f["name"]: f["type"] for f in checked}
    for column, kind in REQUIRED_FIELDS[str(dataset_type)]:
        _require(column in types, f"the {dataset_type} schema requires the field {column}")
        _require(types[column] == kind, f"field {column} must be of type {kind}")
    return checked


def _typed(value: str, kind: str, column: str, where: str) -> Any:
    """A CSV cell as the schema's type; an empty cell is null (but never in a required column)."""
    if value == "":
        if column in ("USER_ID", "ITEM_ID", "TIMESTAMP"):
            raise DatasetFileError(f"{where}: {column} is empty")
        return None
    if kind in ("int", "long"):
        if not _INTEGER.fullmatch(value):
            raise DatasetFileError(f"{where}: {column} {value[:40]!r} is not of type {kind}")
        number = int(value)
        limit = 2**31 if kind == "int" else 2**63
        if not -limit <= number < limit:
            raise DatasetFileError(f"{where}: {column} {value[:40]!r} is out of the range of a {kind}")
        return number
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise DatasetFileError(f"{where}: {column} {value[:40]!r} is not a boolean (true or false)")
        return value.lower() == "true"
    return value


def parse_dataset_file(
    schema: Schema, where: str, data: bytes, rows: list[dict[str, Any]], seen: dict[str, int]
) -> None:
    """
    Check one file of a dataset against its schema and the data rules, adding its rows to ``rows``.

    :param where: the file, as ``s3://bucket/key``, for messages.
    :param seen: the unique ids met so far (USER_ID of user data, ITEM_ID of item data) → their line.
    :raises DatasetFileError: the first rule broken: the header (names, order, case), a repeated id, a
        value not of its column's type.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetFileError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise DatasetFileError(f"{where}: the file is empty (no header row)")
    columns = schema.columns
    if header != columns:
        pairs = enumerate(zip(header, columns, strict=False), start=1)
        detail = next(
            (f"column {i} is {found!r}, the schema has {want!r}" for i, (found, want) in pairs if found != want),
            f"it has {len(header)} columns, the schema {len(columns)}",
        )
        raise DatasetFileError(
            f"{where}: the header does not match schema {schema.name!r} {columns} "
            f"(names, order and case must match): {detail}"
        )
    types = {str(f["name"]): str(f["type"]) for f in schema.fields}
    unique = {"user": "USER_ID", "item": "ITEM_ID"}.get(schema.dataset_type)
    for line, record in enumerate(reader, start=2):
        if not record:
            continue
        here = f"{where} line {line}"
        if len(record) != len(columns):
            raise DatasetFileError(f"{here}: {len(record)} values, the header has {len(columns)} columns")
        row = {
            column: _typed(value, types[column], column, here) for column, value in zip(columns, record, strict=True)
        }
        if unique is not None:
            first = seen.setdefault(str(row[unique]), line)
            if first != line:
                value = str(row[unique])[:40]
                raise DatasetFileError(f"{here}: {unique} {value!r} repeats (first on line {first}); it must be unique")
        if len(rows) >= MAX_DATASET_ROWS:
            raise DatasetFileError(
                f"{where}: more than {MAX_DATASET_ROWS} rows, the most the emulator keeps per dataset"
            )
        rows.append(row)


class GatewayControls:
    """Test support: a throttle (the next N calls answer 429) and a skew of the gateway's clock."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.reset()

    def reset(self) -> None:
        self.throttle_code = "410"
        self.throttle_left = 0
        self.skew_seconds = 0.0

    def check(self) -> None:
        """Answer 429 with the throttle's errorCode while it lasts."""
        if self.throttle_left > 0:
            self.throttle_left -= 1
            raise GatewayError(429, "the test control throttles this call", code=self.throttle_code)

    def now(self) -> float:
        """The gateway's clock (skewed by the clock control)."""
        return self._runtime.now() + self.skew_seconds

    def _test_controls(self) -> None:
        if not self._runtime.config.test_controls:
            raise web.HTTPNotFound()

    async def _json(self, request: web.Request) -> dict[str, Any]:
        self._test_controls()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object")
        return body

    async def post_throttle(self, request: web.Request) -> web.Response:
        """``{"code": "400"|"410"|"420", "count": N}``: the next N AiTEMS calls answer 429 with that code."""
        body = await self._json(request)
        code, count = str(body.get("code", "410")), body.get("count", 1)
        if code not in THROTTLE_CODES or isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise web.HTTPBadRequest(text=f"code must be one of {', '.join(THROTTLE_CODES)}, count an integer >= 0")
        self.throttle_code, self.throttle_left = code, count
        return web.json_response({"code": code, "count": count})

    async def post_clock(self, request: web.Request) -> web.Response:
        """``{"skew_seconds": S}``: the gateway's clock runs S seconds ahead (negative: behind)."""
        body = await self._json(request)
        skew = body.get("skew_seconds")
        if isinstance(skew, bool) or not isinstance(skew, int | float) or abs(skew) > 10 * 365 * 86400:
            raise web.HTTPBadRequest(text="skew_seconds must be a number of seconds")
        self.skew_seconds = float(skew)
        return web.json_response({"skew_seconds": self.skew_seconds})


class Datasets:
    """Schemas and datasets; a dataset's files are read from object storage while it is ``processing``."""

    def __init__(self, aitems: Aitems) -> None:
        self._aitems = aitems
        self._runtime = aitems._runtime
        self._ingesting: set[asyncio.Task[None]] = set()
        self.reset()

    def reset(self) -> None:
        self.schemas: dict[str, Schema] = {}
        self.datasets: dict[str, Dataset] = {}

    def routes(self) -> list[web.RouteDef]:
        controls = self._aitems.gateway
        return [  # /schemas/default before /schemas/{schema_name}: the first match answers
            web.post(f"{PREFIX}/schemas", self.create_schema),
            web.get(f"{PREFIX}/schemas", self.list_schemas),
            web.get(f"{PREFIX}/schemas/default", self.default_schema),
            web.post(f"{PREFIX}/schemas/validation-check", self.validate_schema),
            web.get(f"{PREFIX}/schemas/{{schema_name}}", self.get_schema),
            web.put(f"{PREFIX}/schemas/{{schema_name}}", self.edit_schema),
            web.delete(f"{PREFIX}/schemas/{{schema_name}}", self.delete_schema),
            web.post(f"{PREFIX}/datasets", self.create_dataset),
            web.get(f"{PREFIX}/datasets", self.list_datasets),
            web.get(f"{PREFIX}/datasets/{{dataset_id}}", self.get_dataset),
            web.delete(f"{PREFIX}/datasets/{{dataset_id}}", self.delete_dataset),
            web.post("/_emulator/aitems/throttle", controls.post_throttle),
            web.post("/_emulator/aitems/clock", controls.post_clock),
        ]

    def rows(self, dataset_id: str) -> list[dict[str, Any]]:
        """The parsed rows of an ``enable`` dataset (empty until then), for the services' trainings."""
        dataset = self.datasets.get(dataset_id)
        return dataset.rows if dataset is not None and dataset.outcome == ("enable", "") else []

    # --- schemas ---

    async def _schema_body(self, request: web.Request) -> Schema:
        self._aitems._authenticate(request)
        body = await self._aitems._body(request)
        name, description = body.get("name"), body.get("description", "")
        _require(isinstance(name, str) and _SCHEMA_NAME.fullmatch(name) is not None, "invalid schema name")
        _require(isinstance(description, str), "invalid description")
        fields = _schema_fields(body.get("datasetType"), body.get("fields"))
        return Schema(str(body["datasetType"]), str(name), fields, str(description), self._runtime.now())

    def _schema(self, request: web.Request) -> Schema:
        self._aitems._authenticate(request)
        schema = self.schemas.get(request.match_info["schema_name"])
        if schema is None:
            raise GatewayError(404, "schema not found")
        return schema

    async def create_schema(self, request: web.Request) -> web.Response:
        schema = await self._schema_body(request)
        _require(schema.name not in self.schemas, "a schema with this name already exists")
        _require(len(self.schemas) < MAX_SCHEMAS, f"at most {MAX_SCHEMAS} schemas (emulator limit)")
        self.schemas[schema.name] = schema
        return web.json_response(schema.describe())

    async def validate_schema(self, request: web.Request) -> web.Response:
        schema = await self._schema_body(request)
        _require(schema.name not in self.schemas, "a schema with this name already exists")
        return web.json_response({"result": "ok"})

    async def default_schema(self, request: web.Request) -> web.Response:
        self._aitems._authenticate(request)
        dataset_type = request.query.get("datasetType")
        _require(dataset_type in DATASET_TYPES, f"datasetType must be one of {', '.join(DATASET_TYPES)}")
        fields = [{"name": name, "type": kind} for name, kind in REQUIRED_FIELDS[str(dataset_type)]]
        return web.json_response({"name": f"default_{dataset_type}", "datasetType": dataset_type, "fields": fields})

    async def list_schemas(self, request: web.Request) -> web.Response:
        self._aitems._authenticate(request)
        offset, limit = _page(request)
        dataset_type = request.query.get("datasetType")
        chosen = [s for s in self.schemas.values() if dataset_type in (None, s.dataset_type)]
        newest_first = sorted(chosen, key=lambda s: s.created, reverse=True)
        page = [s.describe() for s in newest_first[offset : offset + limit]]
        return web.json_response({"schemas": page, "offset": offset, "limit": limit})

    async def get_schema(self, request: web.Request) -> web.Response:
        return web.json_response(self._schema(request).describe())

    async def edit_schema(self, request: web.Request) -> web.Response:
        schema = self._schema(request)
        content = (await self._aitems._body(request)).get("content")
        _require(isinstance(content, str), "content must be a string")
        schema.description = str(content)
        return web.json_response(schema.describe())

    async def delete_schema(self, request: web.Request) -> web.Response:
        schema = self._schema(request)
        users = [d.name for d in self.datasets.values() if d.schema_name == schema.name]
        _require(not users, f"the schema is used by dataset(s) {', '.join(users[:5])}")
        del self.schemas[schema.name]
        return web.json_response({"result": "ok"})

    # --- datasets ---

    def _dataset(self, request: web.Request) -> Dataset:
        self._aitems._authenticate(request)
        dataset = self.datasets.get(request.match_info["dataset_id"])
        if dataset is None:
            raise GatewayError(404, "dataset not found")
        return dataset

    async def create_dataset(self, request: web.Request) -> web.Response:
        self._aitems._authenticate(request)
        body = await self._aitems._body(request)
        kind, name, description = body.get("type"), body.get("name"), body.get("description", "")
        _require(kind in DATASET_TYPES, f"type must be one of {', '.join(DATASET_TYPES)}")
        _require(isinstance(name, str) and 0 < len(name) <= 100, "invalid name")
        _require(isinstance(description, str), "invalid description")
        schema = self.schemas.get(str(body.get("schemaName")))
        _require(schema is not None, "schemaName: no such schema")
        assert schema is not None
        _require(schema.dataset_type == kind, f"schema {schema.name} is for {schema.dataset_type} datasets")
        os_info = body.get("osInfo")
        _require(isinstance(os_info, dict), "osInfo must be an object with region, bucket and key")
        assert isinstance(os_info, dict)
        bucket, key = os_info.get("bucket"), os_info.get("key")
        _require(os_info.get("region") == "KR", "osInfo.region must be KR")
        _require(isinstance(bucket, str) and bool(bucket), "osInfo.bucket must be a bucket name")
        _require(isinstance(key, str) and bool(key), "osInfo.key must be an object key or prefix")
        _require(all(d.name != name for d in self.datasets.values()), "a dataset with this name already exists")
        _require(len(self.datasets) < MAX_DATASETS, f"at most {MAX_DATASETS} datasets (emulator limit)")
        timeline = Timeline(self._runtime.now(), self._runtime.config.job_seconds)
        dataset = Dataset(
            _new_id(), str(kind), str(name), schema.name, str(description), str(bucket), str(key), timeline
        )
        self.datasets[dataset.dataset_id] = dataset
        task = asyncio.create_task(self._ingest(dataset, schema))
        self._ingesting.add(task)
        task.add_done_callback(self._ingesting.discard)
        return web.json_response(dataset.describe(self._runtime.now()))

    async def _ingest(self, dataset: Dataset, schema: Schema) -> None:
        """When the dataset turns ``processing``: read its files and check them (off the event loop)."""
        await asyncio.sleep(max(0.0, dataset.timeline.stage_started(1) - self._runtime.now()))
        scripted = _FAIL_MARKER.search(dataset.description)
        if scripted is not None:
            dataset.outcome = (scripted.group(1), "failure scripted by the dataset's description")
            return
        try:
            rows = await self._runtime.submit(self._read_files, dataset, schema)
        except DatasetFileError as exc:
            dataset.outcome = ("upload_failed", str(exc))
        except Exception as exc:  # the bucket, the key or the server: the service says so too
            dataset.outcome = ("upload_failed", f"could not read s3://{dataset.bucket}/{dataset.key}: {exc}")
        else:
            dataset.rows, dataset.outcome = rows, ("enable", "")

    def _read_files(self, dataset: Dataset, schema: Schema) -> list[dict[str, Any]]:
        """The rows of every file of the dataset: its key, or the files under it as a prefix."""
        from .object_storage import ObjectStorageReadError, list_keys, read_object

        config = self._runtime.config
        try:
            files = [(dataset.key, read_object(config, dataset.bucket, dataset.key))]
        except ObjectStorageReadError as exc:
            if exc.code != "NoSuchKey":
                raise
            keys = [k for k in list_keys(config, dataset.bucket, dataset.key) if not k.endswith("/")]
            if not keys:
                raise DatasetFileError(f"s3://{dataset.bucket}/{dataset.key}: no such object or prefix") from None
            files = [(k, read_object(config, dataset.bucket, k)) for k in keys]
        rows: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for key, data in files:
            parse_dataset_file(schema, f"s3://{dataset.bucket}/{key}", data, rows, seen)
        if not rows:
            raise DatasetFileError(f"s3://{dataset.bucket}/{dataset.key}: no data rows")
        return rows

    async def list_datasets(self, request: web.Request) -> web.Response:
        self._aitems._authenticate(request)
        offset, limit = _page(request)
        now = self._runtime.now()
        newest_first = sorted(self.datasets.values(), key=lambda d: d.timeline.started, reverse=True)
        page = [d.describe(now) for d in newest_first[offset : offset + limit]]
        return web.json_response({"datasets": page, "offset": offset, "limit": limit})

    async def get_dataset(self, request: web.Request) -> web.Response:
        return web.json_response(self._dataset(request).describe(self._runtime.now()))

    async def delete_dataset(self, request: web.Request) -> web.Response:
        dataset = self._dataset(request)
        _require(not dataset.connected_services, f"the dataset is linked to service(s) {dataset.connected_services}")
        del self.datasets[dataset.dataset_id]
        return web.json_response({"result": "ok"})


def _page(request: web.Request) -> tuple[int, int]:
    try:
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 1000))
    except ValueError:
        raise GatewayError(400, "offset and limit must be integers") from None
    _require(offset >= 0 and 0 < limit <= 1000, "offset must be >= 0 and limit 1 to 1000")
    return offset, limit


# --- services ---

#: a service description with this marker ends ``disable`` once linked (a scripted failure)
_DISABLE_MARKER = "[emulator-fail:disable]"


def service_status(service: Service, now: float) -> str:
    """
    NAVER's service status: ``datasetRequired`` until one dataset of each type is linked (and for
    the first part of the runtime's job time after, while the links are processed), then
    ``learnable``; ``requestLearning``/``learning`` while a training runs.
    """
    running = [t.timeline.stage(now) for t in service.trainings if t.timeline.stage(now) < 2]
    if service.schedule is not None:  # an interval service's started cycle (see the interval section)
        return "scheduledLearning" if running else "scheduled"
    if running:
        return "learning" if max(running) >= 1 else "requestLearning"
    if service.linked is None or service.linked.stage(now) == 0:
        return "datasetRequired"
    return "disable" if _DISABLE_MARKER in service.description else "learnable"


def _linked_datasets(aitems: Aitems, service: Service) -> list[Dataset]:
    return [d for d in (aitems.data.datasets.get(i) for i in service.dataset_ids.values()) if d is not None]


class ServiceRoutes:
    """Linking a service to its datasets and deleting it (its state lives on :class:`Service`)."""

    def __init__(self, aitems: Aitems) -> None:
        self._aitems = aitems

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{PREFIX}/services/{{service_id}}/datasets", self.link_datasets),
            web.delete(f"{PREFIX}/services/{{service_id}}", self.delete_service),
        ]

    async def link_datasets(self, request: web.Request) -> web.Response:
        """Exactly one user, one item and one interaction dataset; not while scheduled or training."""
        aitems = self._aitems
        service = aitems._service(request)
        body = await aitems._body(request)
        ids = body.get("datasetIds")
        _require(
            isinstance(ids, list) and all(isinstance(i, str) for i in ids),
            "datasetIds must be a list of dataset ids",
        )
        assert isinstance(ids, list)
        now = aitems._runtime.now()
        status = service_status(service, now)
        _require(
            status not in ("requestLearning", "learning", "scheduled", "scheduledLearning"),
            f"datasets cannot be linked while the service is {status}",
        )
        types: dict[str, str] = {}
        for dataset_id in ids:
            dataset = aitems.data.datasets.get(dataset_id)
            if dataset is None:
                raise GatewayError(404, f"dataset {dataset_id} not found")
            _require(dataset.type not in types, f"more than one {dataset.type} dataset")
            dataset_status = dataset.status(now)
            _require(dataset_status == "enable", f"dataset {dataset_id} is {dataset_status}, not enable")
            types[dataset.type] = dataset_id
        _require(
            set(types) == {"user", "item", "interaction"},
            "exactly one user, one item and one interaction dataset are required",
        )
        self._unlink(service)
        service.dataset_ids = types
        service.linked = Timeline(now, aitems._runtime.config.job_seconds)
        for dataset in _linked_datasets(aitems, service):
            dataset.connected_services.append(service.service_id)
        return web.json_response({"serviceId": service.service_id, "datasetIds": ids})

    async def delete_service(self, request: web.Request) -> web.Response:
        aitems = self._aitems
        service = aitems._service(request)
        self._unlink(service)
        del aitems.services[service.service_id]
        for key in [k for k in aitems.trainings if k[0] == service.service_id]:
            del aitems.trainings[key]
        return web.json_response({"result": "ok"})

    def _unlink(self, service: Service) -> None:
        """The service leaves its datasets' ``connectedServices`` (relinked or deleted)."""
        for dataset in _linked_datasets(self._aitems, service):
            dataset.connected_services[:] = [s for s in dataset.connected_services if s != service.service_id]


# --- interval ---

INTERVAL_TERMS = ("hour1", "hour3", "hour6", "hour12")
#: the columns each dataset type's rows must carry (NAVER's data rules)
_REQUIRED_COLUMNS = {"user": ("USER_ID",), "item": ("ITEM_ID",), "interaction": ("USER_ID", "ITEM_ID", "TIMESTAMP")}
#: a schedule description with ``[emulator-update-fail:<status>]`` makes its updates end so
_UPDATE_FAIL_MARKER = re.compile(r"\[emulator-update-fail:(\w+)\]")


@dataclass
class Schedule:
    """A started cycle training: its types and HPO settings, and the description's scripted failures."""

    train_types: list[str]
    hp_config: dict[str, Any]
    description: str
    started: float


@dataclass
class Update:
    """An incremental update of one training version: the rows pushed while it was ``ready``."""

    version: str
    type: str
    train_version: str
    timeline: Timeline
    final_status: str
    rows: int = 0
    users: set[str] = field(default_factory=set)
    items: set[str] = field(default_factory=set)

    def describe(self, now: float) -> dict[str, Any]:
        stage = self.timeline.stage(now)
        status = ("ready", "updating", self.final_status)[stage]
        done = stage == 2 and status == "completed"
        return {
            "updateVersion": self.version,
            "status": status,
            "type": self.type,
            "createdDate": _timestamp(self.timeline.started),
            "finishedDate": _timestamp(self.timeline.stage_started(2)) if stage == 2 else None,
            "updateResult": {
                "inputUsersCnt": len(self.users),
                "inputItemsCnt": len(self.items),
                "inputRowsCnt": self.rows,
                "updatedItemsCnt": len(self.items) if done else 0,
                "updatedUsersCnt": len(self.users) if done else 0,
            },
        }


@dataclass
class PushLog:
    """What one dataset of a service received: each push's row count and how often each row came."""

    batches: list[int] = field(default_factory=list)
    rows: Counter[str] = field(default_factory=Counter)


class IntervalRoutes:
    """
    Interval services: the update cycle, cycle training (start/stop), incremental rows and the
    update history. Starting the cycle trains each type once (the cycle's training); rows pushed
    while it runs go into an update of each type's newest training, which stays ``ready`` for the
    first part of the job time (later pushes join it), then is ``updating``, then ``completed``.
    """

    def __init__(self, aitems: Aitems) -> None:
        self._aitems = aitems
        self._runtime = aitems._runtime
        self.updates: dict[tuple[str, str, str], list[Update]] = {}
        self.pushes: dict[tuple[str, str], PushLog] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.put(f"{PREFIX}/services/{{service_id}}/interval", self.set_interval),
            web.put(f"{PREFIX}/services/{{service_id}}/schedule", self.schedule),
            web.post(f"{PREFIX}/services/{{service_id}}/datasets/{{dataset_id}}", self.push_rows),
            web.get(f"{PREFIX}/services/{{service_id}}/updates", self.list_updates),
            web.get("/_emulator/aitems/pushes", self.pushed),
        ]

    def _interval_service(self, request: web.Request, what: str) -> Service:
        service = self._aitems._service(request)
        _require(service.type == "interval", f"{what} is only for interval services; this one is {service.type}")
        return service

    async def set_interval(self, request: web.Request) -> web.Response:
        service = self._interval_service(request, "an update cycle")
        body = await self._aitems._body(request)
        term = body.get("term")
        _require(term in INTERVAL_TERMS, f"term must be one of {', '.join(INTERVAL_TERMS)}")
        service.interval = str(term)
        return web.json_response({"serviceId": service.service_id, "learningInterval": service.interval})

    async def schedule(self, request: web.Request) -> web.Response:
        service = self._interval_service(request, "cycle training")
        action = request.query.get("action")
        _require(action in ("start", "stop"), "action must be start or stop (in the query)")
        now = self._runtime.now()
        if action == "stop":
            _require(service.schedule is not None, "the cycle training is not started")
            service.schedule = None
            return web.json_response({"serviceId": service.service_id, "status": service_status(service, now)})
        _require(service.schedule is None, "the cycle training is already started")
        _require(service.interval is not None, "set the update cycle (PUT /services/{serviceId}/interval) first")
        status = service_status(service, now)
        _require(status == "learnable", f"the service is {status}: it cannot start learning")
        body = await self._aitems._body(request)
        types, description = body.get("trainTypes"), body.get("description", "")
        hp_config = body.get("hpConfig")
        _require(
            isinstance(types, list) and bool(types) and all(t in TRAIN_TYPES for t in types),
            f"trainTypes must be a non-empty list of {', '.join(TRAIN_TYPES)}",
        )
        _require(isinstance(description, str), "invalid description")
        _require(
            isinstance(hp_config, dict) and isinstance(hp_config.get("is_enabled"), bool),
            "hpConfig.is_enabled must be a boolean",
        )
        assert isinstance(types, list)
        assert isinstance(hp_config, dict)
        timeline = Timeline(now, self._runtime.config.job_seconds)
        for train_type in types:
            final = _final_status(str(description), train_type)
            training = Training(service.service_id, train_type, _new_id(), str(description), hp_config, timeline, final)
            service.trainings.append(training)
            self._aitems.trainings[service.service_id, train_type, training.version] = training
        self._runtime.counters.aitems_trainings_started += len(types)
        service.schedule = Schedule(list(types), hp_config, str(description), now)
        service.scheduled_date = now
        return web.json_response({"serviceId": service.service_id, "status": service_status(service, now)})

    async def push_rows(self, request: web.Request) -> web.Response:
        service = self._interval_service(request, "adding rows")
        dataset_id = request.match_info["dataset_id"]
        dataset = self._aitems.data.datasets.get(dataset_id)
        if dataset is None:
            raise GatewayError(404, f"dataset {dataset_id} not found")
        kind = dataset.type
        _require(
            not service.dataset_ids or dataset_id in service.dataset_ids.values(),
            f"dataset {dataset_id} is not linked to the service",
        )
        body = await self._aitems._body(request)
        _require(body.get("type") == kind, f"type must be the dataset's type, {kind}")
        rows = body.get("value")
        _require(isinstance(rows, list) and bool(rows), "value must be a non-empty list of rows")
        assert isinstance(rows, list)
        for i, row in enumerate(rows):
            _require(isinstance(row, dict), f"value[{i}] is not an object")
            for column in _REQUIRED_COLUMNS[kind]:
                value = row.get(column)
                valid = (
                    isinstance(value, int) and not isinstance(value, bool)
                    if column == "TIMESTAMP"
                    else (isinstance(value, str) and bool(value))
                )
                _require(valid, f"value[{i}] lacks a valid {column}")
        log = self.pushes.setdefault((service.service_id, dataset_id), PushLog())
        log.batches.append(len(rows))
        log.rows.update(json.dumps(row, sort_keys=True) for row in rows)
        if service.schedule is not None:
            self._add_to_updates(service, rows)
        return web.json_response(True)

    def _add_to_updates(self, service: Service, rows: list[dict[str, Any]]) -> None:
        assert service.schedule is not None
        now = self._runtime.now()
        marker = _UPDATE_FAIL_MARKER.search(service.schedule.description)
        for train_type in service.schedule.train_types:
            trained = [t for t in service.trainings if t.type == train_type]
            if not trained:
                continue
            history = self.updates.setdefault((service.service_id, train_type, trained[-1].version), [])
            if not history or history[-1].timeline.stage(now) > 0:  # the open one is taken
                timeline = Timeline(now, self._runtime.config.job_seconds)
                final = marker.group(1) if marker else "completed"
                history.append(Update(str(len(history) + 1), train_type, trained[-1].version, timeline, final))
            update = history[-1]
            update.rows += len(rows)
            update.users.update(str(r["USER_ID"]) for r in rows if "USER_ID" in r)
            update.items.update(str(r["ITEM_ID"]) for r in rows if "ITEM_ID" in r)

    async def list_updates(self, request: web.Request) -> web.Response:
        service = self._aitems._service(request)
        train_type, version = request.query.get("type"), request.query.get("trainVersion")
        _require(train_type in TRAIN_TYPES, f"type must be one of {', '.join(TRAIN_TYPES)}")
        _require(bool(version), "trainVersion is required")
        if (service.service_id, train_type, version) not in self._aitems.trainings:
            raise GatewayError(404, "training not found")
        now = self._runtime.now()
        history = self.updates.get((service.service_id, str(train_type), str(version)), [])
        return web.json_response({"updates": [u.describe(now) for u in reversed(history)]})

    async def pushed(self, request: web.Request) -> web.Response:
        """Test support: what a service's dataset received (``?service_id=&dataset_id=``), to prove no duplicates."""
        if not self._runtime.config.test_controls:
            raise web.HTTPNotFound()
        log = self.pushes.get((request.query.get("service_id", ""), request.query.get("dataset_id", "")), PushLog())
        repeated = [json.loads(row) for row, times in log.rows.items() if times > 1]
        return web.json_response(
            {
                "batches": log.batches,
                "rows": sum(log.batches),
                "distinct_rows": len(log.rows),
                "repeated_rows": repeated[:20],
                "repeated_count": len(repeated),
            }
        )


# --- recommendations ---

#: Recommendations per lookup when the training's hpConfig does not say (NAVER's default).
DEFAULT_RECOMMEND_TOP = 100
_TOP_OPTIONS = {"personalRecommend": "max_user_recommend_top", "relatedItem": "max_relate_recommend_top"}


@dataclass
class TrainedModel:
    """What a completed training learnt from the service's interactions: who viewed what.

    Recommendations are deterministic: a user gets the items of the users who share items
    with them (weighted by how many they share), an item the items viewed by its viewers, both
    topped up with the popular items; ties go to the more popular item, then the smaller id.
    """

    top: int
    user_items: dict[str, set[str]]
    item_users: dict[str, set[str]]
    popular: list[str]
    _answers: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def learn(cls, rows: list[tuple[str, str]], top: int) -> TrainedModel:
        user_items: dict[str, set[str]] = {}
        item_users: dict[str, set[str]] = {}
        for user, item in rows:
            user_items.setdefault(user, set()).add(item)
            item_users.setdefault(item, set()).add(user)
        counts = Counter(item for _, item in rows)
        popular = sorted(counts, key=lambda item: (-counts[item], item))
        return cls(top, user_items, item_users, popular)

    def recommend(self, train_type: str, target: str | None) -> list[str]:
        """The recommendations of ``target``; an empty list for one the model never saw."""
        key = f"{train_type}\0{target}"
        if key not in self._answers:  # memoised: a model never changes once trained
            self._answers[key] = self._recommend(train_type, target)
        return self._answers[key]

    def _recommend(self, train_type: str, target: str | None) -> list[str]:
        if train_type == "pop":
            return self.popular[: self.top]
        scores: Counter[str] = Counter()
        if train_type == "personalRecommend":
            own = self.user_items.get(target or "")
            if own is None:
                return []
            for item in own:
                for neighbour in self.item_users[item]:
                    if neighbour != target:
                        scores.update(self.user_items[neighbour] - own)
            seen = own
        else:
            users = self.item_users.get(target or "")
            if users is None:
                return []
            for user in users:
                scores.update(self.user_items[user])
            seen = {target or ""}
        rank = {item: position for position, item in enumerate(self.popular)}
        chosen = sorted((i for i in scores if i not in seen), key=lambda i: (-scores[i], rank[i], i))[: self.top]
        taken = set(chosen) | seen
        chosen += [item for item in self.popular if item not in taken][: self.top - len(chosen)]
        return chosen


def _recommend_top(training: Training) -> int:
    option = training.hp_config.get(_TOP_OPTIONS.get(training.type, "max_user_recommend_top"))
    try:
        top = int(option) if option is not None and not isinstance(option, bool) else DEFAULT_RECOMMEND_TOP
    except (TypeError, ValueError):
        top = DEFAULT_RECOMMEND_TOP
    return max(1, min(top, 1000))


class Recommendations:
    """The recommendations lookup, answered from the service's newest completed training.

    The interactions a training learns from are the service's (see :meth:`interactions`);
    a test may set them directly (``POST /_emulator/aitems/services/{id}/interactions``, test
    controls only). The answer takes ``inference_latency_ms`` from arrival, like an inference.
    """

    def __init__(self, aitems: Aitems) -> None:
        self._aitems = aitems
        self._runtime = aitems._runtime
        self._interactions: dict[str, list[tuple[str, str]]] = {}
        self._models: dict[tuple[str, str, str], TrainedModel] = {}
        self.lookups = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def routes(self) -> list[web.RouteDef]:
        aitems = self._aitems

        def current(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
            # The routes are made once; a reset replaces aitems.recommendations, and they follow it.
            async def handle(request: web.Request) -> web.Response:
                handler: Callable[[web.Request], Awaitable[web.Response]] = getattr(aitems.recommendations, name)
                return await handler(request)

            return handle

        return [
            web.get(f"{PREFIX}/services/{{service_id}}/infers/lookup", current("lookup")),
            web.post("/_emulator/aitems/services/{service_id}/interactions", current("set_interactions")),
            web.get("/_emulator/aitems/lookups", current("lookup_counts")),
        ]

    def interactions(self, service: Service) -> list[tuple[str, str]]:
        """``(USER_ID, ITEM_ID)`` of every interaction the service learns from."""
        rows = self._interactions.get(service.service_id)
        if rows is not None:
            return rows
        dataset_id = service.dataset_ids.get("interaction")  # the linked dataset's rows, once enable
        data = self._aitems.data.rows(dataset_id) if dataset_id is not None else []
        return [(str(row["USER_ID"]), str(row["ITEM_ID"])) for row in data if "USER_ID" in row and "ITEM_ID" in row]

    def _model(self, service: Service, train_type: str) -> TrainedModel:
        now = self._runtime.now()
        done = [
            t for t in service.trainings if t.type == train_type and t.describe(now)["inference"]
        ]  # oldest first: the newest completed training serves
        if not done:
            raise GatewayError(404, f"no completed {train_type} training: nothing to recommend yet")
        training = done[-1]
        key = (service.service_id, train_type, training.version)
        if key not in self._models:
            self._models[key] = TrainedModel.learn(self.interactions(service), _recommend_top(training))
        return self._models[key]

    async def lookup(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        answer_at = loop.time() + self._runtime.config.inference_latency_ms / 1000
        self.lookups += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            try:
                answer = self._lookup(request)
            except GatewayError as error:  # errors take the latency too
                answer = error.response()
            await asyncio.sleep(max(0.0, answer_at - loop.time()))
            return answer
        finally:
            self.in_flight -= 1

    def _lookup(self, request: web.Request) -> web.Response:
        service = self._aitems._service(request)
        train_type = request.query.get("type", "")
        _require(train_type in TRAIN_TYPES, f"type must be one of {', '.join(TRAIN_TYPES)}")
        target = request.query.get("targetId")
        _require(train_type == "pop" or bool(target), "targetId is required")
        values = self._model(service, train_type).recommend(train_type, target)
        return web.json_response({"field": "ITEM_ID", "values": values})

    def _test_controls(self) -> None:
        if not self._runtime.config.test_controls:
            raise web.HTTPNotFound()

    async def set_interactions(self, request: web.Request) -> web.Response:
        """Test support: the interactions of a service (``{"rows": [[USER_ID, ITEM_ID], ...]}``),
        and ``"trained": [type, ...]``: trainings of those types completed now (with ``"hpConfig"``)."""
        self._test_controls()
        service = self._aitems.services.get(request.match_info["service_id"])
        if service is None:
            raise GatewayError(404, "service not found")
        body = await self._aitems._body(request)
        rows, trained = body.get("rows"), body.get("trained", [])
        hp_config = body.get("hpConfig", {"is_enabled": False})
        _require(
            isinstance(rows, list) and all(isinstance(r, list) and len(r) >= 2 for r in rows),
            "rows must be a list of [USER_ID, ITEM_ID, ...]",
        )
        _require(isinstance(trained, list) and all(t in TRAIN_TYPES for t in trained), "trained: train types")
        _require(isinstance(hp_config, dict), "hpConfig must be an object")
        assert isinstance(rows, list)
        assert isinstance(trained, list)
        assert isinstance(hp_config, dict)
        self._interactions[service.service_id] = [(str(r[0]), str(r[1])) for r in rows]
        self._models = {k: m for k, m in self._models.items() if k[0] != service.service_id}
        versions = {}
        for train_type in trained:
            done = Timeline(self._runtime.now(), 0.0)
            training = Training(service.service_id, train_type, _new_id(), "", hp_config, done, "completed")
            service.trainings.append(training)
            self._aitems.trainings[service.service_id, train_type, training.version] = training
            versions[train_type] = training.version
        return web.json_response({"serviceId": service.service_id, "rows": len(rows), "versions": versions})

    async def lookup_counts(self, request: web.Request) -> web.Response:
        """Test support: lookups answered, and the most in the service at once."""
        self._test_controls()
        return web.json_response({"lookups": self.lookups, "max_in_flight": self.max_in_flight})
