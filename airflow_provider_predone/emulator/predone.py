"""The Prediction One / Easy Predictive Analytics API (``/v1/external/...`` and inference)."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hmac
import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import learning
from .errors import ApiError
from .inference import InferenceRequest
from .runtime import Runtime, Timeline, iso_utc
from .storage import Blob, Storage
from .tabular import DataError, column_info, read_csv
from .training import ConfigError, JobSpec, Outcome, TrainConfig, parse_config, retrain_upload, train_files

PREFIX = "/v1/external"
OWNER_USER_ID = "emulator-user"
_BAD_REQUEST = (4001000204, "PREDA_EXTERNAL_BAD_REQUEST")
_INFERENCE_BAD_REQUEST = (4001030104, "BAD_REQUEST")
_ACCESS_DENIED = (4031030201, "ACCESS_DENIED")
# Inference on more rows than this runs in the executor, not on the event loop.
_INLINE_ROWS = 200


class PredoneError(ApiError):
    """``{"code", "error", "message"}`` with the HTTP status taken from the code's first digits."""

    def __init__(self, kind: tuple[int, str], message: str) -> None:
        super().__init__(message)
        self.code, self.error = kind
        self.message = message

    def response(self) -> web.Response:
        body = {"code": self.code, "error": self.error, "message": self.message}
        return web.json_response(body, status=int(str(self.code)[:3]))


def bad_request(message: str) -> PredoneError:
    return PredoneError(_BAD_REQUEST, message)


@dataclass
class ApiKey:
    kind: str
    model_id: int | None
    expires: float


@dataclass
class Job:
    """A running or finished (re)training; its status follows the wall clock."""

    timeline: Timeline
    result: Blob
    future: asyncio.Future[Outcome]

    def stage(self, now: float) -> str:
        """``waiting``, ``running``, ``finished`` or ``failed`` (running until the work is done)."""
        stage = self.timeline.stage(now)
        if stage == 0:
            return "waiting"
        if stage == 1 or not self.future.done():
            return "running"
        return "finished" if self.outcome.model is not None else "failed"

    @property
    def outcome(self) -> Outcome:
        return self.future.result()

    def updated(self, now: float) -> float:
        """When the status last changed."""
        stage = self.timeline.stage(now)
        if stage == 2 and not self.future.done():
            stage = 1
        return self.timeline.stage_started(stage)

    def describe(self, now: float, prefix: str, url_field: str, base_url: str, storage: Storage) -> dict[str, Any]:
        """``status`` (with ``prefix``), plus ``message`` when failed, or the result's URL as
        ``url_field`` when finished."""
        stage = self.stage(now)
        answer: dict[str, Any] = {"status": prefix + stage}
        if stage == "failed":
            answer["message"] = self.outcome.message
        elif stage == "finished":
            answer[url_field] = storage.presign(base_url, self.result, "GET")
        return answer


@dataclass
class Process:
    """The data of one Train Data Upload (external process id)."""

    learn: Blob
    evaluation: Blob
    column_info: Blob
    info: dict[str | None, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    job: Job | None = None
    target: str | None = None


@dataclass
class ModelResource:
    model_id: int
    name: str
    raw_config: dict[str, Any]
    config: TrainConfig
    training: Job
    created: float
    updated: float
    next_version: int = 2
    switched: tuple[int, learning.Model] | None = None

    def served(self, now: float) -> tuple[int, learning.Model] | None:
        """The version prediction APIs serve (``None`` before the first training finished)."""
        if self.switched is not None:
            return self.switched
        if self.training.stage(now) == "finished":
            model = self.training.outcome.model
            assert model is not None
            return 1, model
        return None


@dataclass
class RetrainJob:
    model_id: int
    filename: str
    upload: Blob
    version: int = 0
    job: Job | None = None
    switched: bool = False


@dataclass
class Classifier:
    model_id: int
    api_key: str
    build: Timeline
    created: float
    updated: float
    rules: list[dict[str, Any]]
    active: bool = True
    is_editable: bool = True
    _networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, bool]] = field(
        default_factory=list, init=False, repr=False
    )

    def status(self, now: float) -> str:
        if not self.active:
            return "stopped"
        return "running" if self.build.stage(now) == 2 else "building"

    def allows(self, remote: str | None) -> bool:
        """Rules by ascending priority; the first whose source holds the client decides; with
        rules but no match the client is refused, without rules everyone is allowed."""
        if not self.rules:
            return True
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        for network, allow in self._networks:
            if address in network:
                return allow
        return False

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the rules; their networks are parsed once here, not on every inference."""
        self.rules = rules
        ordered = sorted(rules, key=lambda rule: int(rule["priority"]))
        self._networks = [(ipaddress.ip_network(r["source"], strict=False), r["order"] == "allow") for r in ordered]

    def __post_init__(self) -> None:
        self.set_rules(self.rules)


@dataclass
class DataSet:
    blob: Blob
    name: str
    created: float
    shape: asyncio.Future[tuple[int, int]]


def _csv_shape(blob: Blob) -> tuple[int, int]:
    """(columns, data rows) of an uploaded CSV, counted cheaply from its lines."""
    with blob.path.open("rb") as source:
        header = source.readline()
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: source.read(1 << 20), b""))
    columns = len(next(csv.reader([header.decode("utf-8-sig", "replace")]), []))
    return columns, rows


def _query(request: web.Request, name: str) -> str:
    """A query parameter without surrounding blanks or BOM (``curl --data-urlencode x@file`` keeps
    the file's final newline)."""
    return request.query.get(name, "").strip().lstrip("\ufeff").strip()


def _paging(request: web.Request) -> tuple[int, int]:
    try:
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 30))
    except ValueError:
        raise bad_request("Invalid offset or limit.") from None
    if offset < 0 or limit < 0:
        raise bad_request("Invalid offset or limit.")
    return offset, limit


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object.

    :raises ValueError: when it is not one.
    """
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")
    return body


async def _request_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body of a management request."""
    try:
        return await _json_object(request)
    except ValueError as exc:
        raise _body_error(str(exc)) from None


def _body_error(message: str) -> PredoneError:
    return bad_request(f"Invalid request body: {message}.")


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"  # https when serving TLS


def _validate_rules(rules: Any) -> list[dict[str, Any]]:
    if not isinstance(rules, list):
        raise bad_request("Invalid rules.")
    for rule in rules:
        try:
            ipaddress.ip_network(rule["source"], strict=False)
            valid = rule["order"] in ("allow", "deny") and type(rule["priority"]) is int
        except (TypeError, KeyError, ValueError):
            valid = False
        if not valid:
            raise bad_request("Invalid rules.")
    return [{"source": r["source"], "order": r["order"], "priority": r["priority"]} for r in rules]


class PredictionOne:
    """State and handlers of the Prediction One API."""

    def __init__(self, runtime: Runtime, storage: Storage) -> None:
        self._runtime = runtime
        self._storage = storage
        self.reset()

    def reset(self) -> None:
        self.api_keys: dict[str, ApiKey] = {}
        self.processes: dict[str, Process] = {}
        self.models: dict[int, ModelResource] = {}
        self.data_sets: dict[int, DataSet] = {}
        self.retrain_jobs: dict[str, RetrainJob] = {}
        self.classifiers: dict[str, Classifier] = {}
        self._inferences_in_flight = 0
        self._next_model_id = 1
        self._next_data_set_id = 1

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/api-key", self.get_api_key),
            web.get(f"{PREFIX}/data-sets/upload-url", self.get_upload_urls),
            web.get(f"{PREFIX}/data-sets/column-info", self.get_column_info),
            web.get(f"{PREFIX}/data-sets", self.list_data_sets),
            web.delete(f"{PREFIX}/data-sets/{{data_set_id}}", self.delete_data_set),
            web.post(f"{PREFIX}/models", self.create_model),
            web.get(f"{PREFIX}/models/results", self.get_results),
            web.get(f"{PREFIX}/models", self.list_models),
            web.delete(f"{PREFIX}/models/{{model_id}}", self.delete_model),
            web.get(f"{PREFIX}/retrain_jobs/upload_url", self.get_retrain_upload_url),
            web.get(f"{PREFIX}/retrain_jobs/{{job_id}}", self.get_retrain_job),
            web.put(f"{PREFIX}/retrain_jobs/{{job_id}}/update_model", self.update_model),
            web.post(f"{PREFIX}/classifiers", self.create_classifier),
            web.get(f"{PREFIX}/classifiers", self.list_classifiers),
            web.get(f"{PREFIX}/classifiers/{{classifier_id}}", self.get_classifier),
            web.patch(f"{PREFIX}/classifiers/{{classifier_id}}", self.update_classifier),
            web.delete(f"{PREFIX}/classifiers/{{classifier_id}}", self.delete_classifier),
            web.post("/v1/inference/{classifier_id}", self.infer),
        ]

    # Credentials -------------------------------------------------------------------------------

    def _credential(self, request: web.Request, kind: str) -> ApiKey:
        value = request.headers.get("x-api-key", "")
        if not value:
            raise bad_request("invalid_api_key.")
        key = self.api_keys.get(value)
        if key is None or key.kind != kind:
            raise bad_request("Not_found_credential.")
        if self._runtime.now() >= key.expires:
            raise bad_request("Inactive_credential.")
        return key

    def _model(self, model_id: object) -> ModelResource:
        try:
            model = self.models.get(int(str(model_id)))
        except ValueError:
            model = None
        if model is None:
            raise bad_request("This model may be deleted.")
        return model

    async def get_api_key(self, request: web.Request) -> web.Response:
        secret = request.headers.get("x-api-key", "")
        if not secret:
            raise bad_request("invalid_api_key.")
        if not hmac.compare_digest(secret.encode(), self._runtime.config.secret_key.encode()):
            raise bad_request("Not_found_credential.")
        kind = _query(request, "credential_type")
        model_id = None
        if kind == "retrain":
            if not _query(request, "model_id"):
                raise bad_request("Model id is required.")
            model_id = self._model(_query(request, "model_id")).model_id
        elif kind != "train":
            raise bad_request("Invalid credential_type.")
        expires = self._runtime.now() + self._runtime.config.api_key_ttl
        value = str(uuid.uuid4())
        self.api_keys[value] = ApiKey(kind, model_id, expires)
        self._runtime.counters.api_keys_issued += 1
        return web.json_response({"api_key": value, "end_date": iso_utc(expires)})

    def expire_keys(self) -> None:
        now = self._runtime.now()
        for key in self.api_keys.values():
            key.expires = min(key.expires, now)

    def finish_jobs(self) -> int:
        """Every (re)training still running ends now, with the outcome its work gives."""
        now = self._runtime.now()
        jobs = [process.job for process in self.processes.values()]
        jobs += [model.training for model in self.models.values()]
        jobs += [retrain.job for retrain in self.retrain_jobs.values()]
        running = {id(job): job for job in jobs if job is not None and job.timeline.stage(now) < 2}
        for job in running.values():
            job.timeline = job.timeline.ended_by(now)
        return len(running)

    # Training ----------------------------------------------------------------------------------

    async def get_upload_urls(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        if _query(request, "extension") != "csv":
            raise bad_request("Invalid extension.")
        process_id = str(uuid.uuid4())
        new_blob = self._storage.new_blob
        process = Process(
            learn=new_blob(f"learn_{process_id}.csv", lambda blob: self._add_data_set(blob)),
            evaluation=new_blob(f"eval_{process_id}.csv", lambda blob: self._add_data_set(blob)),
            column_info=new_blob(f"column_info_{process_id}.csv", lambda blob: None),
        )
        self.processes[process_id] = process
        base, presign = _base_url(request), self._storage.presign
        return web.json_response(
            {
                "learn_data_set_upload_url": presign(base, process.learn, "PUT"),
                "eval_data_set_upload_url": presign(base, process.evaluation, "PUT"),
                "column_info_upload_url": presign(base, process.column_info, "PUT"),
                "external_process_id": process_id,
            }
        )

    def _add_data_set(self, blob: Blob) -> None:
        shape = self._runtime.submit(_csv_shape, blob)
        self.data_sets[self._next_data_set_id] = DataSet(blob, blob.filename, self._runtime.now(), shape)
        self._next_data_set_id += 1

    def _process(self, process_id: str) -> Process:
        process = self.processes.get(process_id)
        if process is None:
            raise bad_request("Not found external process id.")
        if not self._storage.exists(process.learn):
            raise bad_request("Not found data set.")
        return process

    async def get_column_info(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        process = self._process(_query(request, "external_process_id"))
        target = process.target
        if target not in process.info:
            process.info[target] = self._runtime.submit(_column_info_of, process.learn, target)
        try:
            info = await asyncio.shield(process.info[target])
        except DataError as exc:
            raise bad_request(f"Invalid data set: {exc}.") from None
        return web.json_response(info)

    async def create_model(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        body = await _request_body(request)
        process_id = body.get("external_process_id")
        if not isinstance(process_id, str):
            raise _body_error("external_process_id is required")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _body_error("name is required")
        process = self._process(process_id)
        try:
            config = parse_config(body.get("config"))
        except ConfigError as exc:
            raise bad_request(f"Invalid config: {exc}") from None
        now = self._runtime.now()
        model_id = self._next_model_id
        self._next_model_id += 1
        evaluation = process.evaluation.path if self._storage.exists(process.evaluation) else None
        job = self._start_job(JobSpec(model_id, 1, name, config), train_files, process.learn.path, evaluation)
        self.models[model_id] = ModelResource(model_id, name, dict(body["config"]), config, job, now, now)
        process.job, process.target = job, config.target
        self._runtime.counters.trainings_started += 1
        return web.json_response({"external_process_id": process_id})

    def _start_job(self, spec: JobSpec, work: Callable[..., Outcome], *inputs: Any) -> Job:
        """Start ``work(spec, result_path, *inputs)`` in the executor."""
        result = self._storage.new_blob(f"result_{spec.model_id}_{spec.version}.zip")
        spec = dataclasses.replace(spec, layout=self._runtime.config.result_layout)

        def written(future: asyncio.Future[Outcome]) -> None:
            if not future.cancelled() and future.result().model is not None:
                self._storage.mark_written(result)

        future = self._runtime.submit(work, spec, result.path, *inputs)
        future.add_done_callback(written)
        return Job(Timeline(self._runtime.now(), self._runtime.config.job_seconds), result, future)

    async def get_results(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        process = self.processes.get(_query(request, "external_process_id"))
        if process is None:
            raise bad_request("Not found external process id.")
        job = process.job
        if job is None:
            raise bad_request("Not found model.")
        now = self._runtime.now()
        answer = job.describe(now, "", "result_url", _base_url(request), self._storage)
        answer["created_datetime"] = iso_utc(job.timeline.started)
        answer["updated_datetime"] = iso_utc(job.updated(now))
        return web.json_response(answer)

    def _model_entry(self, model: ModelResource, now: float) -> dict[str, Any]:
        served = model.served(now)
        return {
            "model_id": model.model_id,
            "owner_user_id": OWNER_USER_ID,
            "target_type": model.config.target_type,
            "name": model.name,
            "version": served[0] if served else 1,
            "config": model.raw_config,
            "is_api_option": any(c.model_id == model.model_id for c in self.classifiers.values()),
            "updated_date": iso_utc(model.updated),
            "created_date": iso_utc(model.created),
        }

    async def list_models(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        offset, limit = _paging(request)
        now = self._runtime.now()
        newest_first = sorted(self.models.values(), key=lambda model: -model.model_id)
        page = [self._model_entry(model, now) for model in newest_first[offset : offset + limit]]
        return web.json_response(
            {"models": page, "metadata": {"offset": offset, "limit": limit, "total": len(newest_first)}}
        )

    async def delete_model(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        model = self._model(request.match_info["model_id"])
        del self.models[model.model_id]
        for classifier_id, classifier in list(self.classifiers.items()):
            if classifier.model_id == model.model_id:
                del self.classifiers[classifier_id]
        return web.json_response({})

    async def list_data_sets(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        offset, limit = _paging(request)
        base = _base_url(request)
        newest_first = sorted(self.data_sets.items(), key=lambda item: -item[0])
        page = []
        for data_set_id, data_set in newest_first[offset : offset + limit]:
            columns, rows = await asyncio.shield(data_set.shape)
            page.append(
                {
                    "data_set_id": data_set_id,
                    "owner_user_id": OWNER_USER_ID,
                    "name": data_set.name,
                    "extension": "csv",
                    "column_count": columns,
                    "data_count": rows,
                    "data_size": data_set.blob.size,
                    "download_url": self._storage.presign(base, data_set.blob, "GET"),
                    "updated_date": iso_utc(data_set.created),
                    "created_date": iso_utc(data_set.created),
                }
            )
        return web.json_response(
            {"data_sets": page, "metadata": {"offset": offset, "limit": limit, "total": len(newest_first)}}
        )

    async def delete_data_set(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        try:
            data_set = self.data_sets.pop(int(request.match_info["data_set_id"]))
        except (ValueError, KeyError):
            raise bad_request("Not found data set.") from None
        self._storage.delete(data_set.blob)
        return web.json_response({})

    # Retraining --------------------------------------------------------------------------------

    async def get_retrain_upload_url(self, request: web.Request) -> web.Response:
        key = self._credential(request, "retrain")
        model = self._model(key.model_id)
        filename = _query(request, "filename")
        if not filename:
            raise bad_request("Filename is required.")
        if not filename.lower().endswith((".csv", ".zip")):
            raise bad_request("Invalid file extension.")
        job_id = str(uuid.uuid4())
        upload = self._storage.new_blob(filename, lambda blob: self._start_retrain(job_id))
        upload.hold_setting = "retrain_upload_hold"
        self.retrain_jobs[job_id] = RetrainJob(model.model_id, filename, upload)
        url = self._storage.presign(_base_url(request), upload, "PUT")
        return web.json_response({"retrain_job_id": job_id, "upload_url": url})

    def _start_retrain(self, job_id: str) -> None:
        retrain = self.retrain_jobs.get(job_id)
        model = self.models.get(retrain.model_id) if retrain else None
        if retrain is None or model is None:
            return
        retrain.version = model.next_version
        model.next_version += 1
        previous = model.served(self._runtime.now())
        spec = JobSpec(model.model_id, retrain.version, model.name, model.config, previous)
        retrain.job = self._start_job(spec, retrain_upload, retrain.upload.path, retrain.filename)
        self._runtime.counters.retrain_jobs_started += 1

    def _retrain_job(self, request: web.Request) -> tuple[str, RetrainJob, ModelResource]:
        key = self._credential(request, "retrain")
        job_id = request.match_info["job_id"]
        retrain = self.retrain_jobs.get(job_id)
        if retrain is None or retrain.model_id != key.model_id:
            raise bad_request("Not found retrain job.")
        model = self.models.get(retrain.model_id)
        if model is None:
            raise bad_request("This job may be deleted.")
        return job_id, retrain, model

    async def get_retrain_job(self, request: web.Request) -> web.Response:
        job_id, retrain, model = self._retrain_job(request)
        answer: dict[str, Any] = {"status": "upload_waiting"}
        if retrain.job is not None:
            now = self._runtime.now()
            answer = retrain.job.describe(now, "job_", "download_url", _base_url(request), self._storage)
        answer["model_id"] = model.model_id
        answer["metadata"] = {"retrain_job_id": job_id}
        return web.json_response(answer)

    async def update_model(self, request: web.Request) -> web.Response:
        job_id, retrain, model = self._retrain_job(request)
        now = self._runtime.now()
        if retrain.job is None or retrain.job.stage(now) != "finished":
            raise bad_request("Retrain job is not finished.")
        if not any(c.model_id == model.model_id for c in self.classifiers.values()):
            raise bad_request("Not found classifier.")
        # A job switched before and replaced since is switched in again, as any other; only the
        # version served already is left as it is (a repeated call changes nothing).
        if model.switched is None or model.switched[0] != retrain.version:
            trained = retrain.job.outcome.model
            assert trained is not None
            model.switched = (retrain.version, trained)
            model.updated = now
            for classifier in self.classifiers.values():
                if classifier.model_id == model.model_id:
                    classifier.updated = now
            retrain.switched = True
            self._runtime.counters.model_switches += 1
        return web.json_response({"metadata": {"retrain_job_id": job_id}})

    # Prediction APIs ---------------------------------------------------------------------------

    def _classifier_entry(self, classifier_id: str, classifier: Classifier, request: web.Request) -> dict[str, Any]:
        now = self._runtime.now()
        served = self.models[classifier.model_id].served(now)
        return {
            "classifier_id": classifier_id,
            "model_id": classifier.model_id,
            "status": classifier.status(now),
            "api_key": classifier.api_key,
            "version": served[0] if served else 1,
            "url": f"{_base_url(request)}/v1/inference/{classifier_id}",
            "active": classifier.active,
            "is_editable": classifier.is_editable,
            "create_datetime": iso_utc(classifier.created),
            "update_datetime": iso_utc(classifier.updated),
            "rules": classifier.rules,
        }

    def _classifier(self, request: web.Request) -> tuple[str, Classifier]:
        classifier_id = request.match_info["classifier_id"]
        classifier = self.classifiers.get(classifier_id)
        if classifier is None:
            raise bad_request("Not found classifier.")
        return classifier_id, classifier

    async def create_classifier(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        body = await _request_body(request)
        model = self._model(body.get("model_id"))
        now = self._runtime.now()
        served = model.served(now)
        if served is None:
            raise bad_request("Model is not trained.")
        rules = _validate_rules(body.get("rules", []))
        classifier_id, api_key = str(uuid.uuid4()), str(uuid.uuid4())
        build = Timeline(now, self._runtime.config.build_seconds)
        self.classifiers[classifier_id] = Classifier(model.model_id, api_key, build, now, now, rules)
        self._runtime.counters.classifiers += 1
        return web.json_response({"classifier_id": classifier_id, "api_key": api_key, "version": served[0]})

    async def list_classifiers(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        entries = [self._classifier_entry(cid, c, request) for cid, c in self.classifiers.items()]
        return web.json_response({"classifiers": entries})

    async def get_classifier(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        classifier_id, classifier = self._classifier(request)
        return web.json_response({"classifiers": [self._classifier_entry(classifier_id, classifier, request)]})

    async def update_classifier(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        classifier_id, classifier = self._classifier(request)
        body = await _request_body(request)
        for flag in ("active", "is_editable"):
            if flag in body and not isinstance(body[flag], bool):
                raise _body_error(f"{flag} must be a boolean")
        if "rules" in body:
            classifier.set_rules(_validate_rules(body["rules"]))
        classifier.active = body.get("active", classifier.active)
        classifier.is_editable = body.get("is_editable", classifier.is_editable)
        classifier.updated = self._runtime.now()
        return web.json_response({"classifier": self._classifier_entry(classifier_id, classifier, request)})

    async def delete_classifier(self, request: web.Request) -> web.Response:
        self._credential(request, "train")
        classifier_id, _ = self._classifier(request)
        del self.classifiers[classifier_id]
        return web.json_response({})

    # Inference ---------------------------------------------------------------------------------

    async def infer(self, request: web.Request) -> web.Response:
        """I1. ``inference_latency_ms`` is the time from the request's arrival to its answer, as
        a remote service's latency holds its own work: the scoring happens within it, not after
        it, so the emulator's CPU (on the client's machine) does not add to every answer."""
        loop = asyncio.get_running_loop()
        answer_at = loop.time() + self._runtime.config.inference_latency_ms / 1000
        counters = self._runtime.counters
        self._inferences_in_flight += 1
        counters.max_inferences_in_flight = max(counters.max_inferences_in_flight, self._inferences_in_flight)
        try:
            try:
                answer = await self._infer(request)
            except PredoneError as error:  # errors take the latency too
                answer = error.response()
            await asyncio.sleep(max(0.0, answer_at - loop.time()))
            return answer
        finally:
            self._inferences_in_flight -= 1

    async def _infer(self, request: web.Request) -> web.Response:
        classifier = self.classifiers.get(request.match_info["classifier_id"])
        if classifier is None:
            raise PredoneError((4001030101, "NOT_FOUND_CLASSIFIER"), "Not found classifier")
        if request.headers.get("x-api-key") != classifier.api_key:
            raise PredoneError(_ACCESS_DENIED, "Invalid API key")
        if not classifier.allows(request.remote):
            raise PredoneError(_ACCESS_DENIED, "Not allowed source ip")
        now = self._runtime.now()
        status = classifier.status(now)
        served = self.models[classifier.model_id].served(now)
        if status != "running" or served is None:
            raise PredoneError((5031030101, "SERVICE_UNAVAILABLE_ERROR"), f"status is not running (status: {status})")
        version, model = served
        try:
            inputs = InferenceRequest.parse(await _json_object(request), model)
        except ValueError as exc:  # InvalidInput included
            raise PredoneError(_INFERENCE_BAD_REQUEST, str(exc)) from None
        if len(inputs.table.rows) > _INLINE_ROWS:
            outputs = await self._runtime.submit(inputs.score, model)
        else:
            outputs = inputs.score(model)
        self._runtime.counters.predictions += len(inputs.table.rows)
        return web.json_response({"version": version, "outputs": outputs})


def _column_info_of(blob: Blob, target: str | None) -> dict[str, Any]:
    return column_info(read_csv(blob.path), target)
