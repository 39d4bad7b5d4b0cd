"""The NAVER Cloud AiTEMS API (``/api/v1/...``) behind an API Gateway signature v2 check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
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
_SERVICE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,19}")
_FAIL_MARKER = re.compile(r"\[emulator-fail:(\w+)(?::(\w+))?\]")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_GATEWAY_ERRORS = {
    400: ("100", "Bad Request"),
    401: ("200", "Authentication Failed"),
    404: ("300", "Not Found"),
}


class GatewayError(ApiError):
    """``{"error": {"errorCode", "message", "details"}}`` in the NCP API Gateway style."""

    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status, self.details = status, details

    def response(self) -> web.Response:
        code, message = _GATEWAY_ERRORS[self.status]
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

    def describe(self) -> dict[str, Any]:
        return {
            "serviceId": self.service_id,
            "name": self.name,
            "description": self.description,
            "type": self.type,
            "status": "created",
            "createdDate": _timestamp(self.created),
        }


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
        self.reset()

    def reset(self) -> None:
        self.services: dict[str, Service] = {}
        self.trainings: dict[tuple[str, str, str], Training] = {}

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
            # --- services routes ---
            # --- interval routes ---
            # --- recommendations routes ---
        ]

    def _authenticate(self, request: web.Request) -> None:
        headers = request.headers
        timestamp = headers.get("x-ncp-apigw-timestamp", "")
        access_key = headers.get("x-ncp-iam-access-key", "")
        given = headers.get("x-ncp-apigw-signature-v2", "")
        if not (timestamp and access_key and given):
            raise GatewayError(401, "missing authentication headers")
        config = self._runtime.config
        if not hmac.compare_digest(access_key, config.aitems_access_key):
            raise GatewayError(401, "unknown access key")
        expected = signature_v2(config.aitems_secret_key, request.method, request.raw_path, timestamp, access_key)
        if not hmac.compare_digest(expected, given):
            raise GatewayError(401, "signature mismatch")
        if not timestamp.isdigit() or abs(int(timestamp) - self._runtime.now() * 1000) > TIMESTAMP_WINDOW_MS:
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
        _require(isinstance(name, str) and _SERVICE_NAME.fullmatch(name) is not None, "invalid name")
        _require(isinstance(description, str), "invalid description")
        _require(body.get("type") in _SERVICE_TYPES, "type must be batch or interval")
        _require(all(s.name != name for s in self.services.values()), "a service with this name already exists")
        service = Service(_new_id(), str(name), str(description), str(body["type"]), self._runtime.now())
        self.services[service.service_id] = service
        return web.json_response(service.describe())

    async def list_services(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        newest_first = sorted(self.services.values(), key=lambda s: s.created, reverse=True)
        return web.json_response({"services": [s.describe() for s in newest_first]})

    async def get_service(self, request: web.Request) -> web.Response:
        return web.json_response(self._service(request).describe())

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


# --- services ---


# --- interval ---


# --- recommendations ---
