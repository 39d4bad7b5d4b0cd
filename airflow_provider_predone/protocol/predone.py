"""
The Prediction One / Easy Predictive Analytics REST API, without transport.

Every endpoint of the vendor reference is one function returning an :class:`ApiRequest`
(path, parameters, body, which key it needs, how to read the answer). Error answers are
mapped to typed exceptions by :func:`map_error`; job statuses are classified by the
:class:`StatusSets` below. The sync hook, the async triggers and the emulator's contract
tests all use this module, so nothing here is written twice.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    JobNotFinishedError,
    NotFoundError,
    PredictionApiNotRunningError,
    ServerError,
)
from airflow_provider_predone.protocol.common import (
    ApiRequest,
    Credential,
    PresignedUrl,
    Secret,
    SecretKey,
    SecretKeys,
    StatusSets,
    integer_value,
    path_id,
    response_model,
    snippet,
)
from airflow_provider_predone.protocol.common import secrets_in as secrets_in  # where callers found them
from airflow_provider_predone.protocol.common import url_secrets as url_secrets
from airflow_provider_predone.protocol.common import without_urls as without_urls
from airflow_provider_predone.protocol.fields import (
    AnswerFieldError,
    AnswerShapeError,
    answer_id,
    answer_model_id,
    kind_of,
    optional_answer_int,
)

SERVICE_HOSTS: Mapping[str, str] = {
    "prediction_one": "https://developer-api.predictionone.sony.biz",
    "easy_predictive_analytics": "https://developer-api.easy-predictive-analytics.sony.com",
}
DEFAULT_SERVICE = "prediction_one"
T = TypeVar("T")
API_PATH = "/v1/external"

# Only the success statuses are documented. The running and failure statuses below are the
# ones the emulator uses (assumed, see docs/real-service.md); any other status is waited on
# with a warning, unless the user names the running statuses (then it fails at once).
TRAIN_STATUSES = StatusSets(
    success=frozenset({"finished"}),
    failure=frozenset({"failed", "error"}),
    running=frozenset({"waiting", "running"}),
)
# Retraining reports its errors in ``message``: a message with an unknown status is a failure.
RETRAIN_STATUSES = StatusSets(
    success=frozenset({"job_finished"}),
    failure=frozenset({"job_failed"}),
    running=frozenset({"upload_waiting", "job_waiting", "job_running"}),
    message_means_failure=True,
)
# Documented: building, running, updating, failed, terminating, terminated; "stopped" is seen
# in the inference error "status is not running (status: stopped)".
PREDICTION_API_STATUSES = StatusSets(
    success=frozenset({"running"}),
    failure=frozenset({"failed", "terminating", "terminated", "stopped"}),
    running=frozenset({"building", "updating"}),
)
#: Retrain statuses that mean "no upload has started the job yet" (assumed; see the docs).
RETRAIN_NOT_STARTED = frozenset({"upload_waiting"})


def base_url(service: str | None, host: str | None) -> str:
    """
    The API root for a connection: ``host`` (a full origin) wins, else the service's host.

    The service is checked even when ``host`` is set (the emulator, a proxy): it names the
    service in asset URIs, so a typo there would emit events no production DAG listens to.

    :raises ValueError: for an unknown service, naming the extra and the allowed values.
    """
    service = service or DEFAULT_SERVICE
    if service not in SERVICE_HOSTS:
        raise ValueError(f"the connection extra service must be one of {sorted(SERVICE_HOSTS)}, got {service!r}")
    if host:
        origin = host.strip().rstrip("/")
        if "://" not in origin:
            origin = f"https://{origin}"
        return f"{origin}{API_PATH}"
    return f"{SERVICE_HOSTS[service]}{API_PATH}"


# --- ids and inputs --------------------------------------------------------------------------


def positive_id(value: Any, field: str) -> int:
    """A numeric id (model, data set) from a literal or a rendered template (``"3"``)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInputError(f"{field} must be a positive integer id, got {value!r}") from None
    if number <= 0:
        raise InvalidInputError(f"{field} must be a positive integer id, got {value!r}")
    return number


def model_id_value(value: Any, field: str = "model_id") -> int:
    """
    Deprecated: unwrapping a task's XCom is the operators' job, see
    :func:`~airflow_provider_predone.operators._xcom.model_id_value`.
    """
    # Not imported from there: operators._xcom imports this module, and the package has no cycle.
    warnings.warn(
        "airflow_provider_predone.protocol.predone.model_id_value moved to airflow_provider_predone.operators._xcom",
        DeprecationWarning,
        stacklevel=2,
    )
    return positive_id(value["model_id"] if isinstance(value, Mapping) and "model_id" in value else value, field)


def validate_ip_rules(rules: Any) -> list[dict[str, Any]]:
    """Check prediction API access rules (C1's ``rules``); every problem names the rule and the field."""

    if isinstance(rules, Mapping) or not isinstance(rules, Sequence) or isinstance(rules, str) or not rules:
        raise InvalidInputError(f"ip_rules must be a non-empty list of rules, got {rules!r}")
    out = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            raise InvalidInputError(f"ip_rules[{i}] must be a mapping, got {rule!r}")
        try:
            ipaddress.ip_network(str(rule.get("source")), strict=False)
        except ValueError:
            raise InvalidInputError(
                f"ip_rules[{i}].source must be a CIDR such as 0.0.0.0/0, got {rule.get('source')!r}"
            ) from None
        if rule.get("order") not in ("allow", "deny"):
            raise InvalidInputError(f"ip_rules[{i}].order must be 'allow' or 'deny', got {rule.get('order')!r}")
        try:
            priority = int(rule.get("priority", i + 1))
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"ip_rules[{i}].priority must be an integer, got {rule.get('priority')!r}"
            ) from None
        out.append({"source": str(rule["source"]), "order": rule["order"], "priority": priority})
    return out


# --- results -------------------------------------------------------------------------------
# Each answer is a response model that declares its secret fields (keys, presigned URLs): masking
# and error excerpts follow the declaration (protocol.common.secrets_in), and ``repr=False``
# keeps them out of an f-string or a debugger dump.


@response_model
@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key: SecretKey = field(repr=False)
    end_date: datetime | None


@response_model
@dataclass(frozen=True, slots=True)
class UploadUrls:
    external_process_id: str
    learn_data_set_upload_url: PresignedUrl = field(repr=False)
    eval_data_set_upload_url: PresignedUrl = field(repr=False)
    column_info_upload_url: PresignedUrl = field(repr=False)


@response_model
@dataclass(frozen=True, slots=True)
class TrainStatus:
    status: str
    created_datetime: str | None = None
    updated_datetime: str | None = None
    message: str | None = None
    model_id: int | None = None
    result_url: PresignedUrl | None = field(default=None, repr=False)


@response_model
@dataclass(frozen=True, slots=True)
class RetrainUpload:
    retrain_job_id: str
    upload_url: PresignedUrl = field(repr=False)


@response_model
@dataclass(frozen=True, slots=True)
class RetrainStatus:
    status: str
    retrain_job_id: str
    model_id: int | None = None
    message: str | None = None
    download_url: PresignedUrl | None = field(default=None, repr=False)


@response_model
@dataclass(frozen=True, slots=True)
class PredictionApi:
    """A prediction API ("classifier"). ``api_key`` and ``url`` authorise inference."""

    classifier_id: str
    model_id: int | None
    status: str
    version: int | None
    active: bool | None
    api_key: SecretKey = field(repr=False)
    url: str = field(repr=False)
    raw: Annotated[Mapping[str, Any], SecretKeys({"api_key": Secret.KEY})] = field(repr=False, compare=False)

    def public(self) -> dict[str, Any]:
        """Everything but the inference key: safe for XCom and logs."""
        return {k: v for k, v in self.raw.items() if k != "api_key"}


@response_model
@dataclass(frozen=True, slots=True)
class CreatedPredictionApi:
    classifier_id: str
    version: int | None
    api_key: SecretKey = field(repr=False)


@response_model
@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: ``items`` plus the vendor's ``metadata`` (offset, limit, total)."""

    items: Annotated[list[dict[str, Any]], SecretKeys({"download_url": Secret.URL})] = field(repr=False)
    offset: int
    limit: int
    total: int | None


def parse_datetime(value: Any) -> datetime | None:
    """An ``end_date`` as an aware datetime: ISO 8601 or epoch seconds; ``None`` if unreadable."""
    if isinstance(value, int | float) and math.isfinite(value):
        return datetime.fromtimestamp(value, tz=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("/", "-")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dict(payload: Any, field: str = "") -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise AnswerShapeError(field, "a JSON object", payload)
    return payload


def _list(payload: Any, field: str) -> list[Any]:
    if not isinstance(payload, list):
        raise AnswerShapeError(field, "a list", payload)
    return payload


def _text(value: Any) -> str | None:
    """A status or message from an answer, as it may reach logs and events: without query
    strings (presigned URLs), on one line, of bounded length."""
    if isinstance(value, str) and len(value) <= 200 and _PLAIN.fullmatch(value) and not _SECRETISH.search(value):
        return value  # a status or a timestamp: nothing to remove (the full check costs a poll 20 us)
    return None if value is None else snippet(str(value), 1000)


#: Text :func:`snippet` leaves as it is, unless it names a secret: no query string, quotes or controls.
_PLAIN = re.compile(r"[A-Za-z0-9_ .,:+\-]*")
_SECRETISH = re.compile(r"key|secret|token|passw|signature|credential|authorization", re.IGNORECASE)


def _page(key: str, id_field: str) -> Any:
    """A listing's parser; each item's ``id_field`` must be a positive id (it goes into paths)."""

    def parse(payload: Any) -> Page:
        body = _dict(payload)
        meta = _dict(body.get("metadata") or {}, "metadata")
        items = _list(body[key], key)
        for i, item in enumerate(items):
            _dict(item, f"{key}[{i}]")
            if id_field in item:
                answer_model_id(item[id_field], f"{key}[{i}].{id_field}")
        return Page(
            items=items,
            offset=optional_answer_int(meta.get("offset"), "metadata.offset") or 0,
            limit=optional_answer_int(meta.get("limit"), "metadata.limit") or len(items),
            total=optional_answer_int(meta.get("total"), "metadata.total"),
        )

    return parse


def _ignore(payload: Any) -> None:
    return None


# --- credentials (T1) ------------------------------------------------------------------------


def get_api_key(credential_type: Credential, model_id: int | None = None) -> ApiRequest[ApiKey]:
    """T1 Get API Key: a ``train`` key, or a ``retrain`` key for ``model_id``; sent with the secret key."""
    if credential_type not in (Credential.TRAIN, Credential.RETRAIN):
        raise ValueError(f"credential_type must be TRAIN or RETRAIN, got {credential_type}")
    params: dict[str, str | int | bool] = {"credential_type": credential_type.value}
    if credential_type is Credential.RETRAIN:
        if model_id is None:
            raise InvalidInputError("model_id is required for a retrain API key")
        params["model_id"] = model_id

    def parse(payload: Any) -> ApiKey:
        body = _dict(payload)
        key = body["api_key"]
        if not isinstance(key, str) or not key:
            raise AnswerFieldError("api_key", "a non-empty string", kind_of(key))
        return ApiKey(api_key=key, end_date=parse_datetime(body.get("end_date")))

    subject = f"a retrain key of model_id={model_id}" if credential_type is Credential.RETRAIN else "a train key"
    return ApiRequest(
        "Get API Key", "GET", "/api-key", parse, params=params, credential=Credential.SECRET_KEY, subject=subject
    )


# --- training (T2-T9) ------------------------------------------------------------------------


def get_upload_urls(extension: str = "csv") -> ApiRequest[UploadUrls]:
    """T2 Train Data Upload: presigned URLs for the training, evaluation and column-info files."""

    def parse(payload: Any) -> UploadUrls:
        body = _dict(payload)
        return UploadUrls(
            external_process_id=answer_id(body["external_process_id"], "external_process_id"),
            learn_data_set_upload_url=body["learn_data_set_upload_url"],
            eval_data_set_upload_url=body["eval_data_set_upload_url"],
            column_info_upload_url=body["column_info_upload_url"],
        )

    return ApiRequest(
        "Train Data Upload",
        "GET",
        "/data-sets/upload-url",
        parse,
        params={"extension": extension},
        credential=Credential.TRAIN,
        idempotent=True,  # issues fresh URLs; an unused set costs nothing
    )


def get_column_info(external_process_id: str) -> ApiRequest[dict[str, Any]]:
    """T3 Train Data Set Info: the statistics the service computed from the uploaded data."""
    return ApiRequest(
        "Train Data Set Info",
        "GET",
        "/data-sets/column-info",
        _dict,
        params={"external_process_id": external_process_id},
        credential=Credential.TRAIN,
        subject=f"external_process_id={external_process_id}",
    )


def create_model(external_process_id: str, name: str, config: Mapping[str, Any]) -> ApiRequest[str]:
    """T4 Train: create the model, which starts training. Not idempotent."""

    def parse(payload: Any) -> str:
        body = payload if isinstance(payload, dict) else {}
        answered = body.get("external_process_id")
        return external_process_id if answered in (None, "") else answer_id(answered, "external_process_id")

    return ApiRequest(
        "Train",
        "POST",
        "/models",
        parse,
        json={"external_process_id": external_process_id, "name": name, "config": dict(config)},
        credential=Credential.TRAIN,
        idempotent=False,
        subject=f"external_process_id={external_process_id}, model {name!r}",
    )


def get_train_status(external_process_id: str) -> ApiRequest[TrainStatus]:
    """T5 Train Status Check."""

    def parse(payload: Any) -> TrainStatus:
        body = _dict(payload)
        return TrainStatus(
            status=str(_text(body["status"])),
            created_datetime=_text(body.get("created_datetime")),
            updated_datetime=_text(body.get("updated_datetime")),
            message=_text(body.get("message")),
            model_id=answer_model_id(body.get("model_id")),
            result_url=body.get("result_url") or None,
        )

    return ApiRequest(
        "Train Status Check",
        "GET",
        "/models/results",
        parse,
        params={"external_process_id": external_process_id},
        credential=Credential.TRAIN,
        subject=f"external_process_id={external_process_id}",
    )


def list_models(offset: int = 0, limit: int = 30) -> ApiRequest[Page]:
    """T6 list models."""
    return ApiRequest(
        "List Models",
        "GET",
        "/models",
        _page("models", "model_id"),
        params={"offset": offset, "limit": limit},
        credential=Credential.TRAIN,
    )


def delete_model(model_id: int) -> ApiRequest[None]:
    """T7 delete a model."""
    return ApiRequest(
        "Delete Model",
        "DELETE",
        f"/models/{int(model_id)}",
        _ignore,
        credential=Credential.TRAIN,
        subject=f"model_id={int(model_id)}",
    )


def list_data_sets(offset: int = 0, limit: int = 30) -> ApiRequest[Page]:
    """T8 list data sets (their ``download_url`` values are presigned: secrets)."""
    return ApiRequest(
        "List Data Sets",
        "GET",
        "/data-sets",
        _page("data_sets", "data_set_id"),
        params={"offset": offset, "limit": limit},
        credential=Credential.TRAIN,
    )


def delete_data_set(data_set_id: int) -> ApiRequest[None]:
    """T9 delete a data set."""
    return ApiRequest(
        "Delete Data Set", "DELETE", f"/data-sets/{int(data_set_id)}", _ignore, credential=Credential.TRAIN
    )


# --- retraining (R1-R3) ----------------------------------------------------------------------


def get_retrain_upload_url(model_id: int, filename: str) -> ApiRequest[RetrainUpload]:
    """R1 Retrain Data Upload: a job id and the URL whose upload starts retraining."""

    def parse(payload: Any) -> RetrainUpload:
        body = _dict(payload)
        return RetrainUpload(
            retrain_job_id=answer_id(body["retrain_job_id"], "retrain_job_id"), upload_url=body["upload_url"]
        )

    return ApiRequest(
        "Retrain Data Upload",
        "GET",
        "/retrain_jobs/upload_url",
        parse,
        params={"filename": filename},
        credential=Credential.RETRAIN,
        model_id=model_id,
        subject=f"model_id={model_id}, file {filename!r}",
    )


def get_retrain_status(retrain_job_id: str, model_id: int) -> ApiRequest[RetrainStatus]:
    """R2 Retrain Status Check."""

    def parse(payload: Any) -> RetrainStatus:
        body = _dict(payload)
        meta = _dict(body.get("metadata") or {}, "metadata")
        answered = meta.get("retrain_job_id")
        job_id = retrain_job_id if answered in (None, "") else answer_id(answered, "metadata.retrain_job_id")
        return RetrainStatus(
            status=str(_text(body["status"])),
            retrain_job_id=job_id,
            model_id=answer_model_id(body.get("model_id")),
            message=_text(body.get("message")),
            download_url=body.get("download_url") or None,
        )

    return ApiRequest(
        "Retrain Status Check",
        "GET",
        f"/retrain_jobs/{path_id(retrain_job_id, 'retrain_job_id')}",
        parse,
        credential=Credential.RETRAIN,
        model_id=model_id,
        subject=f"retrain_job_id={retrain_job_id}, model_id={model_id}",
    )


def switch_model(retrain_job_id: str, model_id: int) -> ApiRequest[None]:
    """R3 Retrain Model Switch: the model's prediction API serves the retrained model."""
    return ApiRequest(
        "Retrain Model Switch",
        "PUT",
        f"/retrain_jobs/{path_id(retrain_job_id, 'retrain_job_id')}/update_model",
        _ignore,
        credential=Credential.RETRAIN,
        model_id=model_id,
        subject=f"retrain_job_id={retrain_job_id}, model_id={model_id}",
    )


# --- prediction APIs (C1-C4) and inference (I1) ----------------------------------------------

ALLOW_ALL_RULES: tuple[Mapping[str, Any], ...] = ({"source": "0.0.0.0/0", "order": "allow", "priority": 1},)


def create_prediction_api(model_id: int, rules: Sequence[Mapping[str, Any]]) -> ApiRequest[CreatedPredictionApi]:
    """C1 Create classifier. Not idempotent."""

    def parse(payload: Any) -> CreatedPredictionApi:
        body = _dict(payload)
        key = body["api_key"]
        if not isinstance(key, str) or not key:
            raise AnswerFieldError("api_key", "a non-empty string", kind_of(key))
        return CreatedPredictionApi(
            classifier_id=answer_id(body["classifier_id"], "classifier_id"),
            version=optional_answer_int(body.get("version"), "version"),
            api_key=key,
        )

    return ApiRequest(
        "Create Classifier",
        "POST",
        "/classifiers",
        parse,
        json={"model_id": int(model_id), "rules": [dict(r) for r in rules]},
        credential=Credential.TRAIN,
        idempotent=False,
        subject=f"model_id={int(model_id)}",
    )


def _prediction_api(item: Any, where: str = "") -> PredictionApi:
    """One prediction API of an answer; ``where`` prefixes its fields in errors (``classifiers[0].``)."""
    item = _dict(item, where.rstrip("."))
    return PredictionApi(
        classifier_id=answer_id(item["classifier_id"], f"{where}classifier_id"),
        model_id=answer_model_id(item.get("model_id"), f"{where}model_id"),
        status=str(_text(item.get("status", ""))),
        version=optional_answer_int(item.get("version"), f"{where}version"),
        active=item.get("active"),
        api_key=str(item.get("api_key") or ""),
        url=str(item.get("url") or ""),
        raw=dict(item),
    )


def list_prediction_apis() -> ApiRequest[list[PredictionApi]]:
    """C2 Get classifiers."""

    def parse(payload: Any) -> list[PredictionApi]:
        items = _list(_dict(payload)["classifiers"], "classifiers")
        return [_prediction_api(item, f"classifiers[{i}].") for i, item in enumerate(items)]

    return ApiRequest("Get Classifiers", "GET", "/classifiers", parse, credential=Credential.TRAIN)


def get_prediction_api(classifier_id: str) -> ApiRequest[PredictionApi]:
    """C2 Get classifiers, for one id (the form the vendor's curl example uses)."""

    def parse(payload: Any) -> PredictionApi:
        body = _dict(payload)
        if "classifiers" in body:
            items = enumerate(_list(body["classifiers"], "classifiers"))
            matches = [(i, c) for i, c in items if isinstance(c, dict) and str(c.get("classifier_id")) == classifier_id]
            if not matches:
                raise NotFoundError(
                    f"Get Classifiers: prediction API {classifier_id!r} is not in the answer",
                    endpoint="Get Classifiers",
                )
            i, match = matches[0]
            return _prediction_api(match, f"classifiers[{i}].")
        if "classifier" in body:
            return _prediction_api(body["classifier"], "classifier.")
        return _prediction_api(body)

    return ApiRequest(
        "Get Classifiers",
        "GET",
        f"/classifiers/{path_id(classifier_id, 'classifier_id')}",
        parse,
        credential=Credential.TRAIN,
    )


def update_prediction_api(
    classifier_id: str,
    *,
    rules: Sequence[Mapping[str, Any]] | None = None,
    active: bool | None = None,
    is_editable: bool | None = None,
) -> ApiRequest[PredictionApi]:
    """C3 Update classifier (rules, active, is_editable; only the given fields are sent)."""
    body: dict[str, Any] = {}
    if rules is not None:
        body["rules"] = [dict(r) for r in rules]
    if active is not None:
        body["active"] = active
    if is_editable is not None:
        body["is_editable"] = is_editable

    def parse(payload: Any) -> PredictionApi:
        return _prediction_api(_dict(payload)["classifier"], "classifier.")

    return ApiRequest(
        "Update Classifier",
        "PATCH",
        f"/classifiers/{path_id(classifier_id, 'classifier_id')}",
        parse,
        json=body,
        credential=Credential.TRAIN,
    )


def delete_prediction_api(classifier_id: str) -> ApiRequest[None]:
    """C4 Delete classifier."""
    return ApiRequest(
        "Delete Classifier",
        "DELETE",
        f"/classifiers/{path_id(classifier_id, 'classifier_id')}",
        _ignore,
        credential=Credential.TRAIN,
    )


@dataclass(frozen=True, slots=True)
class InferenceOptions:
    """The vendor's inference flags: ``ar`` reasons, ``ad`` echo input, ``nc`` no class labels,
    ``nr`` no row numbers, ``pc`` an id column to prepend."""

    ar: bool = False
    ad: bool = False
    nc: bool = False
    nr: bool = False
    pc: str | None = None


@response_model
@dataclass(frozen=True, slots=True)
class InferenceResult:
    version: int | None
    outputs: Mapping[str, bytes]  #: file name → decoded CSV bytes


def infer(url: str, csv_bytes: bytes, options: InferenceOptions) -> ApiRequest[InferenceResult]:
    """I1 Inference: ``csv_bytes`` is a header row plus data row(s)."""
    before, after = _inference_body(options)
    body = before + base64.b64encode(csv_bytes) + after
    return ApiRequest("Inference", "POST", url, _inference_result, json=body, credential=Credential.CLASSIFIER)


@functools.lru_cache(maxsize=32)
def _inference_body(options: InferenceOptions) -> tuple[bytes, bytes]:
    """The encoded body before and after ``pr``'s base64: one ``json.dumps`` per options, not
    per row (batch scoring sends a row per request; base64 needs no JSON escaping)."""
    inputs: list[dict[str, Any]] = [
        {"name": "pr", "type": "csv", "data": _BASE64_PLACEHOLDER.decode()},
        {"name": "ar", "type": "bool", "data": options.ar},
        {"name": "ad", "type": "bool", "data": options.ad},
        {"name": "nc", "type": "bool", "data": options.nc},
        {"name": "nr", "type": "bool", "data": options.nr},
    ]
    if options.pc:
        inputs.append({"name": "pc", "type": "string", "data": options.pc})
    # pr comes first: nothing before its placeholder is the caller's text, so the first split holds.
    before, after = json.dumps({"inputs": inputs}, ensure_ascii=False).encode().split(_BASE64_PLACEHOLDER, 1)
    return before, after


_BASE64_PLACEHOLDER = b"@base64@"


def _inference_result(payload: Any) -> InferenceResult:
    body = _dict(payload)
    outputs = {str(o["name"]): base64.b64decode(o["data"], validate=True) for o in _list(body["outputs"], "outputs")}
    return InferenceResult(version=optional_answer_int(body.get("version"), "version"), outputs=outputs)


# --- errors ------------------------------------------------------------------------------------

_MESSAGES: Mapping[str, tuple[type[ApiError], str]] = {
    "invalid_api_key.": (AuthenticationError, "the API key does not exist"),
    "Inactive_credential.": (AuthenticationError, "the API key is wrong or no longer active"),
    "Not_found_credential.": (AuthenticationError, "the API key is wrong"),
    "This user may be deleted.": (AuthenticationError, "the user may have been deleted"),
    "This model may be deleted.": (NotFoundError, "the model may have been deleted"),
    "This job may be deleted.": (NotFoundError, "the retrain job may have been deleted"),
    "Model id is required.": (BadRequestError, "a retrain API key needs a model_id"),
    "Not found retrain job.": (NotFoundError, "the retrain_job_id is wrong"),
    "Not found classifier.": (NotFoundError, "the prediction API may have been deleted"),
    "Retrain job is not finished.": (JobNotFinishedError, "retraining has not finished yet"),
    "Not found configuration_file.": (ServerError, "the model's configuration file may have been deleted"),
    # Not in the vendor reference; the emulator's answers where the vendor is silent (docs/emulator.md).
    "Not found model.": (NotFoundError, "no model was created for this external_process_id"),
    "Not found data set.": (NotFoundError, "the data set does not exist or was not uploaded"),
    "Not found external process id.": (NotFoundError, "the external_process_id is wrong"),
}
_INFERENCE_CODES: Mapping[int, tuple[type[ApiError], str]] = {
    4001030101: (NotFoundError, "the prediction API does not exist"),
    4001030104: (BadRequestError, "the request does not match the model's schema"),
    4031030201: (AuthenticationError, "access to the prediction API was denied"),
    5031030101: (PredictionApiNotRunningError, "the prediction API is not running"),
}
#: Messages that mean the *key* is the problem: a cached key is dropped and fetched anew once.
STALE_KEY_MESSAGES = frozenset({"Inactive_credential.", "Not_found_credential.", "invalid_api_key."})


def map_error(request: ApiRequest[Any], status: int, payload: Any, text: str) -> ApiError | None:
    """Map a Prediction One error answer to a typed exception, or ``None`` if it is not one."""
    if not isinstance(payload, dict) or not ({"code", "error", "message"} & payload.keys()):
        return None
    code, error, message = payload.get("code"), payload.get("error"), payload.get("message")
    message_text = str(message) if message is not None else ""
    cls: type[ApiError] | None = None
    meaning = ""
    if message_text in _MESSAGES:
        cls, meaning = _MESSAGES[message_text]
    else:
        with contextlib.suppress(KeyError, ValueError):
            cls, meaning = _INFERENCE_CODES[int(str(code))]
    if cls is None:
        if status == 429 or status >= 500:
            return None  # an unexplained server error: transient, handled generically
        cls, meaning = (BadRequestError, "the service refused the request")
    if request.credential is Credential.SECRET_KEY and message_text in STALE_KEY_MESSAGES:
        # Get API Key is sent with the key the user typed, labelled "Secret key": say so.
        meaning = (
            "the connection's Secret key (its password field) is wrong or no longer active; "
            "create a secret key in the Prediction One web console and put it there"
        )
    parts = [f"HTTP {status}"]
    if code is not None:
        parts.append(f"code {code}")
    if error:
        parts.append(snippet(str(error), 100))
    what = f"{request.label} failed ({', '.join(parts)}): {snippet(message_text or text)!r} — {meaning}"
    return cls(what, endpoint=request.name, http_status=status, code=code, error=error, vendor_message=message_text)


# --- train config -----------------------------------------------------------------------------

TARGET_TYPES = ("binary_classification", "multi_classification", "regression")
TIME_UNITS = ("year", "month", "day", "hour", "minute", "eom")
_BOOL_KEYS = ("im", "tsm", "tsin")
CONFIG_KEYS = ("tc", "tt", "tv", "cv", "im", "tsm", "tsu", "tsc", "tsi", "tsf", "tst", "tss", "tsin", "tsine")


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """
    Check a training ``config`` against the vendor's rules and return it normalised.

    Values are accepted as strings (as in the vendor examples) or JSON numbers/booleans and
    sent as strings (``tsine`` as a list). Every rule broken is reported at once, naming the
    key and what is allowed.

    :raises InvalidInputError: naming every offending key.
    """
    if not isinstance(config, Mapping):
        raise InvalidInputError(f"config must be a mapping of config keys to values, got {type(config).__name__}")
    problems: list[str] = []
    out: dict[str, Any] = {}
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        problems.append(f"unknown key(s) {unknown}; allowed: {list(CONFIG_KEYS)}")

    def text(key: str) -> str | None:
        value = config.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value).strip()

    def integer(key: str, minimum: int) -> int | None:
        if config.get(key) is None:
            return None
        value = integer_value(config[key])  # a number or a numeric string, as AiTEMS's hp_config
        if value is None or value < minimum:
            problems.append(f"{key!r} must be an integer >= {minimum}, got {config[key]!r}")
            return None
        out[key] = str(value)
        return value

    tc = text("tc")
    if not tc:
        problems.append("'tc' (the target column) is required")
    else:
        out["tc"] = tc
    tt = text("tt")
    if tt not in TARGET_TYPES:
        problems.append(f"'tt' (prediction type) must be one of {list(TARGET_TYPES)}, got {config.get('tt')!r}")
    else:
        out["tt"] = tt
    tv = text("tv")
    if tt == "binary_classification":
        if not tv:
            problems.append("'tv' (the positive value) is required when 'tt' is binary_classification")
        else:
            out["tv"] = tv
    elif tv is not None and tt is not None:
        problems.append("'tv' is only allowed when 'tt' is binary_classification")
    integer("cv", -1)
    for key in _BOOL_KEYS:
        raw = text(key)
        if raw is None:
            continue
        if raw.lower() not in ("true", "false"):
            problems.append(f"{key!r} must be 'true' or 'false', got {config[key]!r}")
        else:
            out[key] = raw.lower()
    if out.get("im") == "true" and tt == "regression":
        problems.append("'im' (class imbalance) is only allowed for classification")
    tsm = out.get("tsm") == "true"
    ts_keys = [k for k in ("tsu", "tsc", "tsi", "tsf", "tst", "tss", "tsin", "tsine") if config.get(k) is not None]
    if tsm and tt is not None and tt != "regression":
        problems.append("'tsm' (time-series mode) is only allowed when 'tt' is regression")
    if not tsm and ts_keys:
        problems.append(f"{ts_keys} are time-series settings and need 'tsm': 'true'")
    tsu = text("tsu")
    if tsu is not None:
        if tsu not in TIME_UNITS:
            problems.append(f"'tsu' (time unit) must be one of {list(TIME_UNITS)}, got {config['tsu']!r}")
        else:
            out["tsu"] = tsu
    for key in ("tsc", "tss"):
        value = text(key)
        if value is not None:
            out[key] = value
    integer("tsi", 0)
    tsf = integer("tsf", 1)
    tst = integer("tst", 1)
    if tsm:
        for key in ("tsc", "tsf", "tst"):
            if config.get(key) in (None, ""):
                problems.append(f"{key!r} is required when 'tsm' is 'true'")
        if tsf is not None and tst is not None and tst < tsf:
            problems.append(f"'tst' must be >= 'tsf', got tsf={tsf} and tst={tst}")
        # Roles of columns cannot overlap: the target is what is forecast, the time column says
        # when, the series column which series (docs/guides/forecasting.md).
        if tc and out.get("tsc") == tc:
            problems.append(f"'tsc' (the time column) must not be the target column 'tc', got {tc!r} for both")
        if out.get("tss") is not None and out.get("tss") in (tc, out.get("tsc")):
            problems.append(f"'tss' (the series column) must differ from 'tc' and 'tsc', got {out['tss']!r}")
    tsine = config.get("tsine")
    if tsine is not None:
        if isinstance(tsine, str) or not all(isinstance(c, str) and c for c in tsine):
            problems.append(f"'tsine' must be a list of column names, got {tsine!r}")
        else:
            out["tsine"] = list(tsine)
            roles = [c for c in tsine if c in (tc, out.get("tsc"), out.get("tss"))]
            if roles:
                problems.append(f"'tsine' lists other columns, not the target, time or series column: {roles}")
    if problems:
        raise InvalidInputError("Invalid training config: " + "; ".join(problems))
    return out


def config_columns(config: Mapping[str, Any]) -> dict[str, str]:
    """The config keys that name columns of the data: key → column name."""
    columns = {k: str(config[k]) for k in ("tc", "tsc", "tss") if config.get(k)}
    for i, name in enumerate(config.get("tsine") or ()):
        columns[f"tsine[{i}]"] = str(name)
    return columns
