"""
Transport-free pieces shared by both vendors: request descriptions, status classification and
the reading of answers into results or typed errors.

Nothing here performs I/O. The sync hooks (``requests``) and the async side used by triggers
(``aiohttp``) each add only the sending; both build requests and read answers through this
module and the vendor modules next to it, so endpoint knowledge is written exactly once.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    NotFoundError,
    TransientApiError,
    UnexpectedResponseError,
)
from airflow_provider_predone.protocol.fields import AnswerFieldError, shape

T = TypeVar("T")


class Credential(enum.Enum):
    """Which secret authorises a request (Prediction One sends it as ``x-api-key``)."""

    NONE = "none"  #: presigned URLs and AiTEMS (signed per request instead)
    SECRET_KEY = "secret_key"  # noqa: S105 #: only Get API Key
    TRAIN = "train"
    RETRAIN = "retrain"  #: bound to one model
    CLASSIFIER = "classifier"  #: a prediction API's own inference key


@dataclass(frozen=True, slots=True)
class ApiRequest(Generic[T]):
    """
    One API call, described without any transport.

    :param name: the vendor's name of the endpoint, used in every error message.
    :param method: HTTP method.
    :param path: path below the service's base URL, already formatted; or an absolute URL.
    :param parse: turns the decoded JSON body (``None`` for an empty body) into the result.
    :param params: query parameters, encoded once into :attr:`target` so that a request
        signature covers exactly the bytes sent.
    :param json: JSON body, if any; ``bytes`` are a body encoded already (inference builds its
        body around each row's base64 without encoding the rest again).
    :param credential: which key authorises the call.
    :param model_id: the model a ``RETRAIN`` key must be bound to.
    :param idempotent: whether sending it twice is harmless. A non-idempotent request whose
        answer is lost is never re-sent blindly (see ``reconcile`` in the hooks).
    :param subject: the resource ids the call concerns (``model_id=42``), named in every error.
    """

    name: str
    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str | int | bool] | None = None
    json: Any = None
    credential: Credential = Credential.NONE
    model_id: int | None = None
    idempotent: bool = True
    subject: str = ""

    @property
    def target(self) -> str:
        """Path (or URL) plus the encoded query string, exactly as it goes on the wire."""
        if not self.params:
            return self.path
        query = urlencode({k: _query_value(v) for k, v in self.params.items()})
        return f"{self.path}?{query}"

    @property
    def label(self) -> str:
        """
        ``Train Status Check (GET /models/results) for external_process_id=...`` — for every
        message about this call: the operation and the ids it concerns; never a query string.
        """
        path = self.path if "://" not in self.path else "<prediction API URL>"
        return f"{self.name} ({self.method} {path})" + (f" for {self.subject}" if self.subject else "")

    def body(self) -> bytes | None:
        if self.json is None or isinstance(self.json, bytes):
            return self.json
        return json.dumps(self.json, ensure_ascii=False).encode()


def path_id(value: Any, name: str) -> str:
    """
    An id that goes into a URL path: non-empty, and unable to change the path.

    :raises InvalidInputError: naming ``name`` and what is allowed.
    """
    text = "" if value is None else str(value).strip()
    if not text or any(c in "/?#%\\" or not c.isprintable() for c in text) or text in (".", ".."):
        raise InvalidInputError(
            f"{name} must be a non-empty id without '/', '?', '#', '%', '\\' or control characters, got {value!r}"
        )
    return text


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,18}")


def integer_value(value: Any) -> int | None:
    """
    An integer setting given as a JSON number or as a numeric string (``"500"``, as a rendered
    template is), the same way for both vendors; ``None`` for anything else (a boolean, a
    fraction, other text), for the caller to report naming the setting.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Phase(enum.Enum):
    """Where a remote job stands, whatever the vendor calls its status."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    #: a status in none of the sets: waited on (with a warning), or a failure when strict
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StatusSets:
    """
    Classifies vendor status strings into :class:`Phase`.

    Vendors document their success status but rarely all the others. A status in none of the
    sets is :attr:`Phase.UNKNOWN`: waited on like a running one (the waiter logs it once as a
    warning), unless the sets are ``strict`` — which they become when the user names the
    running statuses — in which case it fails at once.

    :param success: statuses meaning the job succeeded.
    :param failure: statuses meaning the job failed.
    :param running: statuses known to mean "still in progress".
    :param strict: an unknown status is a failure.
    :param message_means_failure: an answer carrying a ``message`` is a failure unless its
        status is a known running or success one (retraining reports its errors this way).
    """

    success: frozenset[str]
    failure: frozenset[str]
    running: frozenset[str] = frozenset()
    strict: bool = False
    message_means_failure: bool = False

    def classify(self, status: str | None, message: str | None = None) -> Phase:
        if status in self.success:
            return Phase.SUCCESS
        if status in self.failure:
            return Phase.FAILURE
        if status in self.running:
            return Phase.RUNNING
        if self.strict or (message and self.message_means_failure):
            return Phase.FAILURE
        return Phase.UNKNOWN

    def overridden(
        self,
        success: Iterable[str] | None = None,
        failure: Iterable[str] | None = None,
        running: Iterable[str] | None = None,
    ) -> StatusSets:
        """These sets with the given ones replaced (``None`` keeps the default); ``running`` makes them strict."""
        return StatusSets(
            success=frozenset(success) if success is not None else self.success,
            failure=frozenset(failure) if failure is not None else self.failure,
            running=frozenset(running) if running is not None else self.running,
            strict=self.strict or running is not None,
            message_means_failure=self.message_means_failure,
        )

    def describe(self) -> str:
        """``success ['finished'], failure ['failed'], running ['running']`` for messages."""
        rest = "" if self.strict else " (other statuses are waited on)"
        return f"success {sorted(self.success)}, failure {sorted(self.failure)}, running {sorted(self.running)}{rest}"


# --- secrets in answers ------------------------------------------------------------------------


class Secret(enum.Enum):
    """How a response field declared secret is masked: as a whole, or as a presigned URL."""

    KEY = "key"  #: an API or inference key: the value itself
    URL = "url"  #: a presigned URL: the URL, its query and every signature-like value in it


@dataclass(frozen=True, slots=True)
class SecretKeys:
    """Declares the secret keys of the JSON objects a field holds (a listing's items, a raw answer)."""

    keys: Mapping[str, Secret]


#: A key (``api_key: SecretKey = field(repr=False)``); masked, redacted from error excerpts.
SecretKey = Annotated[str, Secret.KEY]
#: A presigned URL; masked with its signature, redacted from error excerpts, dropped by :func:`without_urls`.
PresignedUrl = Annotated[str, Secret.URL]

#: Every response model, by class: its declared secret fields (name → how each is masked).
RESPONSE_MODELS: dict[type, dict[str, Secret | SecretKeys]] = {}
#: The JSON field names of keys declared by any response model: their values never reach an excerpt.
SECRET_FIELD_NAMES: set[str] = set()

#: Each model's presigned URLs that may be absent, which :func:`without_urls` drops.
_OPTIONAL_URLS: dict[type, tuple[str, ...]] = {}

ModelT = TypeVar("ModelT", bound=type)


def response_model(cls: ModelT) -> ModelT:
    """
    Register a dataclass as a response model and read the secrets its annotations declare
    (:data:`SecretKey`, :data:`PresignedUrl`, ``Annotated[..., SecretKeys({...})]``), so that
    masking (:func:`secrets_in`, :func:`without_urls`) and excerpts (:func:`redact`) follow them.
    """
    declared: dict[str, Secret | SecretKeys] = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        marker = _marker(hint)
        if marker is not None:
            declared[name] = marker
            keys = marker.keys.items() if isinstance(marker, SecretKeys) else [(name, marker)]
            # A URL keeps its place in an excerpt: without_query strips its signature.
            SECRET_FIELD_NAMES.update(key for key, how in keys if how is Secret.KEY)
    RESPONSE_MODELS[cls] = declared
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    _OPTIONAL_URLS[cls] = tuple(n for n, how in declared.items() if how is Secret.URL and defaults[n] is None)
    _secret_field_pattern.cache_clear()
    return cls


def _marker(hint: Any) -> Secret | SecretKeys | None:
    """The secret marker of a type hint, looking through ``X | None``."""
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Secret | SecretKeys)), None)
    return next((m for arg in typing.get_args(hint) if (m := _marker(arg)) is not None), None)


def url_secrets(url: str | None) -> list[str]:
    """A presigned URL, its query and the signature-like values in it: each must be masked."""
    if not url:
        return []
    parts = urlsplit(url)
    found = [url, parts.query] if parts.query else [url]
    for name, value in parse_qsl(parts.query):
        if any(word in name.lower() for word in ("signature", "credential", "token", "key")) and len(value) > 4:
            found.append(value)
    return found


def _values(value: Any, how: Secret) -> list[str]:
    if not isinstance(value, str) or not value:
        return []
    return url_secrets(value) if how is Secret.URL else [value]


def secrets_in(answer: Any) -> list[str]:
    """
    Every secret an answer carries, read from its model's declaration, so that the sync hook
    and the async client mask exactly the same values, each in its own way.
    """
    if isinstance(answer, list):
        return list(dict.fromkeys(secret for item in answer for secret in secrets_in(item)))
    declared = RESPONSE_MODELS.get(type(answer))
    if not declared:
        return []
    found: list[str] = []
    for name, how in declared.items():
        value = getattr(answer, name)
        if isinstance(how, Secret):
            found += _values(value, how)
            continue
        objects = value if isinstance(value, list) else [value]
        for item in objects:
            if isinstance(item, Mapping):
                found += [s for key, kind in how.keys.items() for s in _values(item.get(key), kind)]
    return list(dict.fromkeys(found))


def without_urls(answer: T) -> T:
    """An answer without the presigned URLs it may lack (those declared optional), for callers
    that need only its status: nothing left to mask."""
    drop = _OPTIONAL_URLS.get(type(answer))
    if not drop or all(getattr(answer, name) is None for name in drop):
        return answer  # a running job's status: nothing to copy (the triggers' hot path)
    return dataclasses.replace(answer, **dict.fromkeys(drop))  # type: ignore[type-var]


# --- answers ---------------------------------------------------------------------------------

ErrorMapper = Callable[[ApiRequest[Any], int, Any, str], ApiError | None]


def decode_json(request: ApiRequest[Any], status: int, body: bytes) -> Any:
    """
    The JSON of a 2xx answer (``None`` for an empty body); anything else is a clear error.

    A body that looks like JSON but does not parse (cut short, mistyped) is the vendor's answer
    and may hold keys: the error says where it broke, never what it holds. Anything else (a
    proxy's or login page's HTML) is quoted, shortened and redacted, as error answers are.
    """
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack
        if body.lstrip()[:1] in (b"{", b"["):
            where = f"{exc.msg} at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            what = f"JSON that does not parse ({where}; {len(body)} bytes, not quoted)"
        else:
            what = f"not JSON: {snippet(body)!r}"
        raise UnexpectedResponseError(
            f"{request.label} answered HTTP {status} with a body that is {what}",
            endpoint=request.name,
            http_status=status,
        ) from None


def read_answer(
    request: ApiRequest[T],
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    map_error: ErrorMapper,
    conn_id: str,
) -> T:
    """
    Turn one HTTP answer into the request's result or a typed exception.

    :param map_error: the vendor's mapping of an error answer (status, decoded body, raw text)
        to an exception, or ``None`` when it does not recognise the answer.
    """
    if 200 <= status < 300:
        payload = decode_json(request, status, body)
        try:
            return request.parse(payload)
        except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            # The answer may carry keys and presigned URLs: name the field and the answer's
            # shape, never a value (nor an exception's own text, e.g. int()'s, which quotes it).
            raise UnexpectedResponseError(
                f"{request.label} answered an unexpected body ({_unreadable(exc)}); "
                f"its shape: {shape(payload)} (values not quoted)",
                endpoint=request.name,
                http_status=status,
            ) from None
    text = body.decode("utf-8", "replace")
    try:
        payload = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):  # an error answer is still read by its status
        payload = None
    error = map_error(request, status, payload, text)
    if error is None:
        error = generic_http_error(request, status, text)
    if isinstance(error, AuthenticationError):
        error.args = (f"{error.args[0]} (check the credentials of connection {conn_id!r})",)  # no note yet
    error.retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    raise error


def _unreadable(exc: BaseException) -> str:
    """Why a 2xx answer could not be read, from the parser's exception, without any value."""
    kind = next(c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins")
    if isinstance(exc, AnswerFieldError):  # its message is built from the field's name only
        return f"{kind}: {exc}"
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):  # our parsers' literal names
        return f"{kind}: no field {snippet(exc.args[0], 60)!r}"
    return f"{kind}: a field has an unexpected type or value"


def generic_http_error(request: ApiRequest[Any], status: int, text: str) -> ApiError:
    """An error answer the vendor mapping did not recognise: 429/5xx transient, else permanent."""
    what = f"{request.label} failed with HTTP {status}"
    body = f": {snippet(text)!r}" if text.strip() else " and an empty body"
    if status == 429 or status >= 500:
        return TransientApiError(f"{what}{body}", endpoint=request.name, http_status=status)
    by_status: dict[int, type[ApiError]] = {401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError}
    cls = by_status.get(status, BadRequestError)
    return cls(f"{what}{body}", endpoint=request.name, http_status=status)


def parse_retry_after(value: str | None) -> float | None:
    """
    Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); ``None`` when
    absent or not a finite number (``inf``, ``nan``). How long is actually waited is capped by
    the retry policy, never by the server.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        from datetime import datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


_SECRET_QUERY = re.compile(r"\?[^\s'\"<>]*")
#: A field whose name says it holds a secret (``"api_key": "…"``, ``Authorization=…``), with its value.
_NAME_WORDS = r"api[_-]?key|secret|token|password|passwd|signature|credential|authorization"
_FIELD_VALUE = r"""(?P<value>"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,;&}\]]+)"""
_SECRET_FIELD = re.compile(
    rf"""(?P<name>["']?[\w-]*(?:{_NAME_WORDS})[\w-]*["']?\s*[:=]\s*){_FIELD_VALUE}""", re.IGNORECASE
)


def snippet(body: bytes | str, limit: int = 300) -> str:
    """A short, single-line excerpt of an answer body for error messages, without query strings
    (a presigned URL's signature is in its query) or the values of fields named like secrets."""
    text = body[: limit * 4].decode("utf-8", "replace") if isinstance(body, bytes) else body[: limit * 4]
    text = redact(without_query(" ".join(text.split())))
    return text if len(text) <= limit else f"{text[:limit]}…"


def redact(text: str) -> str:
    """Replace the values of fields named like secrets (``api_key``, ``token``, ...) or declared
    secret by a response model (``result_url``) with ``<redacted>``."""
    return _secret_field_pattern(frozenset(SECRET_FIELD_NAMES)).sub(lambda m: f'{m["name"]}"<redacted>"', text)


@functools.cache
def _secret_field_pattern(declared: frozenset[str]) -> re.Pattern[str]:
    if not declared:
        return _SECRET_FIELD
    names = "|".join(re.escape(name) for name in sorted(declared, key=len, reverse=True))
    return re.compile(
        rf"""(?P<name>["']?(?:[\w-]*(?:{_NAME_WORDS})[\w-]*|{names})["']?\s*[:=]\s*){_FIELD_VALUE}""",
        re.IGNORECASE,
    )


def without_query(text: str) -> str:
    """Drop query strings from a message: presigned URLs carry their signature there."""
    return _SECRET_QUERY.sub("?…", text)
