"""
Transport-free pieces shared by both vendors: request descriptions, status classification,
error construction and the retry policy.

Nothing here performs I/O. The sync hooks (``requests``) and the async side used by triggers
(``aiohttp``) each add only the sending; both build requests and read answers through this
module and the vendor modules next to it, so endpoint knowledge is written exactly once.
"""

from __future__ import annotations

import enum
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

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


DEFAULT_TIMEOUT = 30.0
DEFAULT_TRANSFER_TIMEOUT = 300.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_WAIT = 1.0
DEFAULT_RETRY_MAX_WAIT = 30.0
#: Largest API answer read (a JSON document; the largest real one, a page of 30 models with
#: their configs, is a few KiB). An answer announcing more is refused unread.
DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024


class ConnectionLike(Protocol):
    """The parts of an Airflow connection the hooks read (any Airflow 3.x Connection class)."""

    @property
    def conn_id(self) -> str: ...
    @property
    def conn_type(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def login(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def connection_extras(conn: ConnectionLike) -> dict[str, Any]:
    """The connection's extras; older forms prefixed custom fields with ``extra__<type>__``."""
    raw = conn.extra_dejson or {}
    prefix = f"extra__{conn.conn_type}__"
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in raw.items()}


#: Environment variables naming a CA bundle, in the order ``requests`` reads the first two;
#: ``SSL_CERT_FILE`` (OpenSSL's) comes last. Read only when ``trust_env`` is on.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
_PROXY_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True, repr=False)
class Networking:
    """
    Proxies, TLS verification and client certificate of a connection: the networking extras
    of Airflow's ``http`` connection, with the same names and meanings, read once and applied
    alike to sync calls, async calls (triggers, waits, batch scoring) and presigned transfers.

    Hashable, so an async session and its SSL context are shared per distinct setting.

    :param proxies: ``(("http", url), ("https", url))`` by target scheme; connection proxies
        win over the environment's, as with ``requests``.
    :param verify: verify server certificates.
    :param ca_bundle: the CA bundle to verify against: the ``verify`` path, else (with
        ``trust_env``) one named by :data:`CA_BUNDLE_VARIABLES`; ``None`` for the default bundle.
    :param cert: client certificate file, or ``(certificate, key)``.
    :param trust_env: honour ``HTTP(S)_PROXY``, ``NO_PROXY`` and the CA bundle variables.
    """

    proxies: tuple[tuple[str, str], ...] = ()
    verify: bool = True
    ca_bundle: str | None = None
    cert: str | tuple[str, str] | None = None
    trust_env: bool = True

    @classmethod
    def from_extras(
        cls, conn_id: str, extras: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Networking:
        """Read ``proxies``, ``verify``, ``cert`` and ``trust_env``; a bad value is an error naming it."""
        import os

        def fail(name: str, expected: str, value: Any) -> ValueError:
            shown = "<hidden>" if name == "proxies" else repr(value)  # it may carry a password
            return ValueError(f"Connection {conn_id!r}: extra {name!r} must be {expected}, got {shown}")

        trust_env = _flag(extras.get("trust_env"), True)
        if trust_env is None:
            raise fail("trust_env", "true or false", extras.get("trust_env"))
        proxies = _proxies(extras.get("proxies"))
        if proxies is None:
            raise fail(
                "proxies",
                'one proxy URL or an object {"http": URL, "https": URL} of http:// or https:// URLs with a host',
                extras.get("proxies"),
            )
        raw_verify = extras.get("verify")
        verify = _flag(raw_verify, True)
        ca_bundle: str | None = None
        if verify is None:  # a path
            if not isinstance(raw_verify, str) or not os.path.exists(raw_verify):
                raise fail("verify", "true, false or the path of an existing CA bundle file or directory", raw_verify)
            verify, ca_bundle = True, raw_verify
        elif verify and trust_env:
            env = os.environ if environ is None else environ
            ca_bundle = next((env[name] for name in CA_BUNDLE_VARIABLES if env.get(name)), None)
        try:
            cert = _cert(extras.get("cert"))
        except ValueError:
            raise fail(
                "cert", "a client certificate path, or [certificate path, key path]", extras.get("cert")
            ) from None
        missing = [path for path in ([cert] if isinstance(cert, str) else list(cert or ())) if not os.path.isfile(path)]
        if missing:
            raise ValueError(f"Connection {conn_id!r}: extra 'cert' names a file that does not exist: {missing[0]!r}")
        return cls(proxies=proxies, verify=verify, ca_bundle=ca_bundle, cert=cert or None, trust_env=trust_env)

    def proxy_for(self, url: str) -> str | None:
        """The connection's proxy for ``url`` (by scheme), credentials included; ``None`` if none."""
        scheme = "https" if url.startswith("https:") else "http"
        for key, proxy in self.proxies:
            if key == scheme:
                return proxy
        return None

    def secrets(self) -> list[str]:
        """What must be masked in logs: each proxy URL that carries a password, and the password."""
        found: list[str] = []
        for _, proxy in self.proxies:
            parts = urlsplit(proxy)
            if parts.password:
                found += [proxy, parts.password, unquote(parts.password)]
        return list(dict.fromkeys(found))

    def __repr__(self) -> str:
        proxies = {key: proxy_display(proxy) for key, proxy in self.proxies}
        return (
            f"Networking(proxies={proxies}, verify={self.verify}, ca_bundle={self.ca_bundle!r}, "
            f"cert={self.cert!r}, trust_env={self.trust_env})"
        )


def proxy_display(proxy: str) -> str:
    """A proxy URL without its credentials, for messages: ``http://proxy.example:3128``."""
    parts = urlsplit(proxy)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _flag(value: Any, default: bool) -> bool | None:
    """A boolean extra (JSON or the form's text); ``None`` when it is something else."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _proxies(value: Any) -> tuple[tuple[str, str], ...] | None:
    """``proxies`` as ``((scheme, url), ...)``; ``None`` when malformed."""
    if value is None or value == "" or value == {}:
        return ()
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, str):
        value = dict.fromkeys(_PROXY_SCHEMES, value.strip())
    if not isinstance(value, Mapping) or not set(value) <= set(_PROXY_SCHEMES):
        return None
    pairs = []
    for key in _PROXY_SCHEMES:
        proxy = value.get(key)
        if proxy in (None, ""):
            continue
        if not isinstance(proxy, str):
            return None
        try:
            parts = urlsplit(proxy)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            return None
        if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
            return None
        pairs.append((key, proxy))
    return tuple(pairs)


def _cert(value: Any) -> str | tuple[str, str] | None:
    """``cert`` as a path or ``(cert, key)``; :exc:`ValueError` when malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        value = json.loads(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return (value[0], value[1])
    raise ValueError(value)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """
    Connection-level HTTP behaviour, read from the connection's extras.

    :param base_url: the API root every relative path is appended to.
    :param conn_id: the Airflow connection, named in error messages.
    :param timeout: seconds for each API request (connect and read).
    :param transfer_timeout: seconds of silence tolerated during an upload or download.
    :param max_retries: retries of a transient failure (so ``max_retries + 1`` attempts).
    :param retry_wait: first backoff wait; doubles each retry, with jitter.
    :param retry_max_wait: cap of one wait between attempts, a server's ``Retry-After`` included.
    :param max_answer_bytes: largest API answer read; a longer one is an error naming the call.
    :param network: proxies, TLS verification and client certificate (:class:`Networking`).
    """

    base_url: str
    conn_id: str
    timeout: float = DEFAULT_TIMEOUT
    transfer_timeout: float = DEFAULT_TRANSFER_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_wait: float = DEFAULT_RETRY_WAIT
    retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    network: Networking = field(default_factory=Networking)

    @classmethod
    def from_extras(cls, base_url: str, conn_id: str, extras: Mapping[str, Any]) -> HttpSettings:
        """Read the documented extras; a bad value is an error naming the field."""

        def number(name: str, default: float, minimum: float) -> float:
            raw = extras.get(name)
            if raw in (None, ""):
                return default
            try:
                value = float(raw)
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(f"Connection {conn_id!r}: extra {name!r} must be a number, got {raw!r}")
            if value < minimum:
                raise ValueError(f"Connection {conn_id!r}: extra {name!r} must be >= {minimum}, got {raw!r}")
            return value

        return cls(
            base_url=base_url.rstrip("/"),
            conn_id=conn_id,
            timeout=number("timeout", DEFAULT_TIMEOUT, 0.001),
            transfer_timeout=number("transfer_timeout", DEFAULT_TRANSFER_TIMEOUT, 0.001),
            max_retries=int(number("max_retries", DEFAULT_MAX_RETRIES, 0)),
            retry_wait=number("retry_wait_seconds", DEFAULT_RETRY_WAIT, 0),
            retry_max_wait=number("retry_max_wait_seconds", DEFAULT_RETRY_MAX_WAIT, 0),
            max_answer_bytes=int(number("max_answer_bytes", DEFAULT_MAX_ANSWER_BYTES, 1024)),
            network=Networking.from_extras(conn_id, extras),
        )

    def url(self, target: str) -> str:
        return target if "://" in target else f"{self.base_url}{target}"


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
_SECRET_FIELD = re.compile(
    r"""(?P<name>["']?[\w-]*(?:api[_-]?key|secret|token|password|passwd|signature|credential|authorization)"""
    r"""[\w-]*["']?\s*[:=]\s*)(?P<value>"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,;&}\]]+)""",
    re.IGNORECASE,
)


def snippet(body: bytes | str, limit: int = 300) -> str:
    """A short, single-line excerpt of an answer body for error messages, without query strings
    (a presigned URL's signature is in its query) or the values of fields named like secrets."""
    text = body[: limit * 4].decode("utf-8", "replace") if isinstance(body, bytes) else body[: limit * 4]
    text = redact(without_query(" ".join(text.split())))
    return text if len(text) <= limit else f"{text[:limit]}…"


def redact(text: str) -> str:
    """Replace the values of fields named like secrets (``api_key``, ``token``, ...) with ``<redacted>``."""
    return _SECRET_FIELD.sub(lambda m: f'{m["name"]}"<redacted>"', text)


def without_query(text: str) -> str:
    """Drop query strings from a message: presigned URLs carry their signature there."""
    return _SECRET_QUERY.sub("?…", text)


def transport_error(request_label: str, endpoint: str, exc: BaseException) -> TransientApiError:
    """A connection-level failure (reset, timeout, refused) as a transient API error."""
    detail = without_query(str(exc)) or type(exc).__name__
    return TransientApiError(
        f"{request_label}: {type(exc).__name__}: {detail}",
        endpoint=endpoint,
    )


# --- retries ---------------------------------------------------------------------------------


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.transient


def retry_policy(
    settings: HttpSettings,
    before_sleep: Callable[[Any], None] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """
    Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying``: the one retry policy.

    Transient failures are retried with exponential backoff and full jitter, waiting at least
    a ``Retry-After`` the server sent but never more than ``retry_max_wait`` (a server cannot
    park a worker or the triggerer); everything else fails at once.

    :param deadline: Unix time no wait may reach (a trigger's deadline): a retry that would
        have to wait past it is not made, and the last failure is raised instead.
    """
    import tenacity

    backoff = tenacity.wait_random_exponential(multiplier=settings.retry_wait, max=settings.retry_max_wait)

    def wanted(retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        retry_after = getattr(exc, "retry_after", None) or 0.0
        return min(max(float(retry_after), backoff(retry_state)), settings.retry_max_wait)

    def wait(retry_state: tenacity.RetryCallState) -> float:
        seconds = wanted(retry_state)
        return seconds if deadline is None else max(0.0, min(seconds, deadline - time.time()))

    def stop(retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number > settings.max_retries:
            return True
        # Whatever the order tenacity evaluates wait and stop in: the wait wanted decides.
        return deadline is not None and time.time() + wanted(retry_state) >= deadline

    return {
        "stop": stop,
        "wait": wait,
        "retry": tenacity.retry_if_exception(is_transient),
        "reraise": True,
        "before_sleep": before_sleep,
    }


def describe_retry(retry_state: Any) -> str:
    """``attempt 2 failed (TransientApiError: ...); retrying in 1.3 s`` for the retry log line."""
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    return f"attempt {retry_state.attempt_number} failed ({type(exc).__name__}: {exc}); retrying in {wait:.1f} s"
