"""
A connection's HTTP settings, read once from its extras: where requests go, their timeouts
and retries, and its networking (proxies, TLS verification, client certificate), the same
extras as Airflow's ``http`` connection. Both vendors' hooks read their connections through
this module; the transports in :mod:`._http` apply what it says.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

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
