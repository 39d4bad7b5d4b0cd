"""
The I/O half of the hooks: send :class:`ApiRequest` descriptions over ``requests`` (sync) or
``aiohttp`` (async), with the one retry policy, and stream files to and from presigned URLs.

Both vendors' hooks use these transports; what to send and how to read the answer comes from
:mod:`airflow_provider_predone.protocol`.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import aiohttp
import requests
import tenacity
import yarl
from requests.adapters import HTTPAdapter

from airflow_provider_predone.exceptions import ApiError, TransferError, TransientApiError
from airflow_provider_predone.protocol.common import (
    ApiRequest,
    ErrorMapper,
    HttpSettings,
    describe_retry,
    parse_retry_after,
    read_answer,
    retry_policy,
    snippet,
    transport_error,
)

if TYPE_CHECKING:
    import logging

    from airflow_provider_predone.files import DataSource

T = TypeVar("T")
Headers = Mapping[str, str] | Callable[[], Mapping[str, str]]

CHUNK = 1024 * 1024
DOWNLOAD_BUFFER = 256 * 1024
_USER_AGENT = "airflow-provider-predone"


def _log_retry(log: logging.Logger | Any, label: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        log.warning("%s: %s", label, describe_retry(retry_state))

    return before_sleep


def _json_headers(request: ApiRequest[Any], headers: Mapping[str, str]) -> dict[str, str]:
    out = {"Accept": "application/json", "User-Agent": _USER_AGENT, **headers}
    if request.json is not None:
        out["Content-Type"] = "application/json; charset=utf-8"
    return out


class SyncTransport:
    """
    Sends API requests and presigned transfers with one ``requests.Session`` (kept alive).

    :param settings: base URL, timeouts and retry settings of the connection.
    :param map_error: the vendor's error mapping.
    :param log: where retries and transfer progress are logged.
    """

    def __init__(self, settings: HttpSettings, map_error: ErrorMapper, log: logging.Logger | Any) -> None:
        self.settings = settings
        self._map_error = map_error
        self.log = log
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            # Retries are ours (with backoff and reconcile); urllib3's own would hide them.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def send(
        self,
        request: ApiRequest[T],
        headers: Headers,
        *,
        reconcile: Callable[[], T | None] | None = None,
    ) -> T:
        """
        Send ``request`` and read its answer, retrying transient failures.

        :param headers: the headers, or a function computing them per attempt (a signature
            covering a timestamp must be fresh on every retry).
        :param reconcile: for a non-idempotent request, called before every re-send: it checks
            whether the previous attempt took effect (its answer may have been lost) and returns
            that result, or ``None`` to send again. Required when ``request.idempotent`` is false.
        """
        if not request.idempotent and reconcile is None:
            raise TypeError(f"{request.label} is not idempotent: pass reconcile= to retry it safely")
        url = self.settings.url(request.target)
        body = request.body()

        def once() -> T:
            current = headers() if callable(headers) else headers
            try:
                response = self.session.request(
                    request.method,
                    url,
                    data=body,
                    headers=_json_headers(request, current),
                    timeout=self.settings.timeout,
                    allow_redirects=False,
                )
                content = response.content
            except requests.RequestException as exc:
                raise transport_error(request.label, request.name, exc) from None
            return read_answer(
                request,
                response.status_code,
                response.headers,
                content,
                self._map_error,
                self.settings.conn_id,
            )

        return self._with_retries(request.label, once, reconcile)

    def _with_retries(self, label: str, once: Callable[[], T], reconcile: Callable[[], T | None] | None) -> T:
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and reconcile is not None:
                done = reconcile()
                if done is not None:
                    self.log.info("%s: the previous attempt took effect; not sending it again", label)
                    return done
            return once()

        retrying = tenacity.Retrying(**retry_policy(self.settings, _log_retry(self.log, label)))
        return retrying(attempt)

    def upload(
        self,
        url: str,
        source: DataSource,
        *,
        label: str,
        landed: Callable[[], bool] | None = None,
    ) -> int:
        """
        Stream ``source`` to a presigned URL with a ``Content-Length`` and no API key.

        A retry whose PUT is refused with 412 means the previous attempt completed (the URL
        accepts one upload); ``landed`` may also tell, before a re-send, that it did — used
        where an upload starts a job and must never be repeated.

        :return: the number of bytes sent.
        """
        attempts = 0
        size = source.size

        def once() -> int:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and landed is not None and landed():
                self.log.info("%s: the previous upload landed; not sending it again", label)
                return size
            progress = Progress(self.log, label, size)
            try:
                with source.open() as stream:
                    response = self.session.put(
                        url,
                        data=_CountingReader(stream, size, progress),
                        headers={"Content-Length": str(size), "User-Agent": _USER_AGENT},
                        timeout=(self.settings.timeout, self.settings.transfer_timeout),
                        allow_redirects=False,
                    )
                    content = response.content
            except requests.RequestException as exc:
                raise transport_error(label, label, exc) from None
            if response.status_code == 412 and attempts > 1:
                self.log.info("%s: the upload URL reports the previous attempt completed", label)
                return size
            if not 200 <= response.status_code < 300:
                raise storage_error(label, response.status_code, content, response.headers)
            progress.done()
            return size

        return self._with_retries(label, once, None)

    def download(self, url: str, destination: Path, *, label: str, max_bytes: int) -> int:
        """
        Stream a presigned URL to ``destination`` (atomically: a partial file never remains).

        :raises TransferError: if the answer is larger than ``max_bytes``.
        :return: the number of bytes written.
        """
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.part")

        def once() -> int:
            try:
                with self.session.get(
                    url,
                    stream=True,
                    timeout=(self.settings.timeout, self.settings.transfer_timeout),
                    headers={"User-Agent": _USER_AGENT},
                    allow_redirects=False,
                ) as response:
                    if not 200 <= response.status_code < 300:
                        raise storage_error(label, response.status_code, response.content, response.headers)
                    expected = _content_length(response.headers)
                    _check_size(label, expected, max_bytes)
                    progress = Progress(self.log, label, expected)
                    with partial.open("wb") as out:
                        for chunk in _body_chunks(response):
                            out.write(chunk)
                            progress.add(len(chunk))
                            _check_size(label, progress.sent, max_bytes)
            except requests.RequestException as exc:
                partial.unlink(missing_ok=True)
                raise transport_error(label, label, exc) from None
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            _check_complete(label, progress.sent, expected, partial)
            os.replace(partial, destination)
            progress.done()
            return progress.sent

        return self._with_retries(label, once, None)


class AsyncTransport:
    """The async counterpart of :class:`SyncTransport` for API requests, on a given session."""

    def __init__(
        self,
        settings: HttpSettings,
        map_error: ErrorMapper,
        session: aiohttp.ClientSession,
        log: logging.Logger | Any,
    ) -> None:
        self.settings = settings
        self._map_error = map_error
        self.session = session
        self.log = log
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)

    async def send(
        self,
        request: ApiRequest[T],
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]],
    ) -> T:
        """
        Send an idempotent ``request`` (status checks, inference), retrying transient failures.

        :param headers: the headers, or a function computing them per attempt (for
            signatures that cover a timestamp).
        """
        if not request.idempotent:
            raise TypeError(f"{request.label} is not idempotent; the async side only sends idempotent calls")
        # encoded=True: the query goes out byte-for-byte as built, so a signature over it holds.
        url = yarl.URL(self.settings.url(request.target), encoded=True)
        body = request.body()

        async def once() -> T:
            current = headers() if callable(headers) else headers
            try:
                async with self.session.request(
                    request.method,
                    url,
                    data=body,
                    headers=_json_headers(request, current),
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    content = await response.read()
                    status, response_headers = response.status, response.headers
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise transport_error(request.label, request.name, exc) from None
            return read_answer(request, status, response_headers, content, self._map_error, self.settings.conn_id)

        # The first attempt goes out without tenacity, whose set-up per call cost about a third
        # more client CPU per status check (thousands of triggers poll in one loop; see P1 in
        # docs/benchmarks.md). A transient failure is replayed as tenacity's first attempt, so
        # waits, retries and log lines are those of the policy, as if tenacity had sent it.
        try:
            return await once()
        except ApiError as exc:
            if not exc.transient:
                raise
            first_failure: ApiError | None = exc
        retrying = tenacity.AsyncRetrying(**retry_policy(self.settings, _log_retry(self.log, request.label)))
        async for attempt in retrying:
            with attempt:
                if first_failure is not None:
                    failure, first_failure = first_failure, None
                    raise failure
                return await once()
        raise AssertionError("unreachable: tenacity re-raises the last error")


# --- shared async sessions ----------------------------------------------------------------------

_SESSIONS: dict[tuple[int, str], tuple[aiohttp.ClientSession, int]] = {}


@asynccontextmanager
async def shared_session(key: str) -> AsyncIterator[aiohttp.ClientSession]:
    """
    One ``aiohttp`` session per event loop and ``key`` (the connection), shared by every user.

    A triggerer runs thousands of triggers in one loop; giving each its own session (its own
    connection pool, DNS cache, keep-alive sockets) costs memory and CPU per trigger for
    nothing. The session closes when its last user leaves.
    """
    slot = (id(asyncio.get_running_loop()), key)
    entry = _SESSIONS.get(slot)
    if entry is None or entry[0].closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
            headers={"User-Agent": _USER_AGENT},
        )
        _SESSIONS[slot] = (session, 1)
    else:
        session = entry[0]
        _SESSIONS[slot] = (session, entry[1] + 1)
    try:
        yield session
    finally:
        current, users = _SESSIONS[slot]
        if users <= 1:
            del _SESSIONS[slot]
            await current.close()
        else:
            _SESSIONS[slot] = (current, users - 1)


# --- transfers -----------------------------------------------------------------------------------


class Progress:
    """Logs a long transfer every 10 % (files under 64 MiB get one line at the end)."""

    def __init__(self, log: logging.Logger | Any, label: str, total: int | None) -> None:
        self.log = log
        self.label = label
        self.total = total
        self.sent = 0
        self.started = time.monotonic()
        self._next_report = self._step()

    def _step(self) -> int:
        if not self.total or self.total < 64 * CHUNK:
            return 1 << 62
        return max(self.total // 10, CHUNK)

    def add(self, n: int) -> None:
        self.sent += n
        if self.sent >= self._next_report:
            self._next_report += self._step()
            pct = f"{100 * self.sent / self.total:.0f} %" if self.total else ""
            self.log.info("%s: %s of %s %s (%s)", self.label, _mib(self.sent), _mib(self.total), pct, self._rate())

    def done(self) -> None:
        self.log.info("%s: %s transferred (%s)", self.label, _mib(self.sent), self._rate())

    def _rate(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return f"{self.sent / elapsed / CHUNK:.1f} MiB/s"


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / CHUNK:.1f} MiB"


class _CountingReader:
    """A file wrapper that reports progress; its ``len`` lets ``requests`` send Content-Length."""

    def __init__(self, stream: IO[bytes], size: int, progress: Progress) -> None:
        self._stream = stream
        self._size = size
        self._progress = progress

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        # urllib3 reads 16 KiB blocks; reading bigger ones cuts the per-call overhead.
        data = self._stream.read(max(n, CHUNK) if n > 0 else n)
        self._progress.add(len(data))
        return data


def _body_chunks(response: requests.Response) -> Iterator[bytes | memoryview]:
    """
    A streamed response's body, a chunk at a time.

    Without a content encoding the bytes are read straight into one reused buffer: the generic
    path allocates a fresh megabyte per chunk, which costs page faults and copies that made the
    hook's downloads CPU-bound (benchmark P2). The buffer is a quarter of a MiB, small enough to
    stay in the CPU cache between reading it and writing it out (measured faster than 1 MiB).
    Our own length check replaces urllib3's.
    """
    raw: Any = getattr(response.raw, "_fp", None)  # the http.client response under urllib3
    if response.headers.get("Content-Encoding", "identity") != "identity" or not hasattr(raw, "readinto"):
        yield from response.iter_content(CHUNK)
        return
    buffer = memoryview(bytearray(DOWNLOAD_BUFFER))
    while True:
        try:
            n = raw.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:  # as requests would report them
            raise requests.ConnectionError(exc) from exc
        if not n:
            return
        yield buffer[:n]


def _content_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _check_size(label: str, size: int | None, max_bytes: int) -> None:
    if size is not None and size > max_bytes:
        raise TransferError(
            f"{label}: the download is larger than the allowed {max_bytes} bytes; refusing it "
            f"(raise max_download_bytes if this is expected)"
        )


def _check_complete(label: str, received: int, expected: int | None, partial: Path) -> None:
    if expected is not None and received != expected:
        partial.unlink(missing_ok=True)
        raise TransientApiError(f"{label}: download truncated: {received} of {expected} bytes arrived")


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")


def storage_error(label: str, status: int, body: bytes, headers: Mapping[str, str]) -> ApiError:
    """An error answer of a presigned URL (S3-style XML or anything else)."""
    fields = dict(_XML_FIELD.findall(body.decode("utf-8", "replace")))
    detail = " ".join(filter(None, (fields.get("Code"), fields.get("Message")))) or snippet(body) or "empty body"
    message = f"{label} failed with HTTP {status}: {detail}"
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return TransientApiError(message, endpoint=label, http_status=status, retry_after=retry_after)
    if status == 403:
        message += " (the presigned URL expired or its signature was refused: request a new one)"
    return ApiError(message, endpoint=label, http_status=status, code=fields.get("Code"))
