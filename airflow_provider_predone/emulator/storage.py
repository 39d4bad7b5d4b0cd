"""Object storage behind presigned URLs (S3-like; see "Presigned URLs" in docs/emulator.md)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import mimetypes
import secrets
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

from .errors import ApiError
from .runtime import Runtime

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SIGNED_METHODS = ("GET", "PUT")


class StorageError(ApiError):
    """An S3-style XML error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message></Error>"
        )
        return web.Response(status=self.status, text=body, content_type="application/xml")


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _method_not_allowed() -> StorageError:
    return StorageError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")


@dataclass
class Blob:
    """A stored object; an upload slot until its one PUT completes.

    :param filename: the name it is served as (decides its content type).
    :param on_complete: called on the event loop when the upload completes.
    """

    object_id: str
    path: Path
    filename: str
    uploadable: bool = False
    completed_at: float | None = None
    size: int = 0
    on_complete: Callable[[Blob], None] | None = None
    #: test support: the prefix of the config settings ``<prefix>_before`` / ``<prefix>_after``
    #: that hold this blob's upload (see "Admin endpoints" in docs/emulator.md)
    hold_setting: str | None = None

    @property
    def complete(self) -> bool:
        return self.completed_at is not None


class Storage:
    """Blobs on disk under ``root``, reachable through signed, expiring URLs.

    :param root: a directory owned by the storage (emptied on reset).
    """

    def __init__(self, runtime: Runtime, root: Path) -> None:
        self._runtime = runtime
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self.reset()

    def reset(self) -> None:
        self._blobs: dict[str, Blob] = {}
        self._key = secrets.token_bytes(32)
        self.signatures: list[str] = []
        for child in self._root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def new_blob(self, filename: str, on_complete: Callable[[Blob], None] | None = None) -> Blob:
        """A new object; with ``on_complete`` it is an upload slot, otherwise the caller writes
        ``path`` and calls :meth:`mark_written`."""
        object_id = uuid.uuid4().hex
        blob = Blob(object_id, self._root / object_id, filename, uploadable=on_complete is not None)
        blob.on_complete = on_complete
        self._blobs[object_id] = blob
        return blob

    def mark_written(self, blob: Blob) -> None:
        """Record that ``blob.path`` now holds the object (unless a reset forgot the blob)."""
        if self._blobs.get(blob.object_id) is blob:
            blob.size = blob.path.stat().st_size
            blob.completed_at = time.time()

    def exists(self, blob: Blob) -> bool:
        """Whether the blob holds its object and was not deleted since."""
        return blob.complete and self._blobs.get(blob.object_id) is blob

    def delete(self, blob: Blob) -> None:
        self._blobs.pop(blob.object_id, None)
        blob.path.unlink(missing_ok=True)

    def presign(self, base_url: str, blob: Blob, method: str) -> str:
        """A URL for ``method`` on the blob, valid for ``url_ttl`` seconds from now."""
        date = datetime.now(UTC).strftime(_AMZ_DATE)
        expires = max(1, math.ceil(self._runtime.config.url_ttl))
        signature = self._sign(method, blob.object_id, date, str(expires))
        self.signatures.append(signature)
        return (
            f"{base_url}/_storage/{blob.object_id}"
            f"?X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-Signature={signature}"
        )

    def _sign(self, method: str, object_id: str, date: str, expires: str) -> str:
        message = f"{method}\n{object_id}\n{date}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _authorise(self, request: web.Request, object_id: str) -> None:
        date = request.query.get("X-Amz-Date", "")
        expires = request.query.get("X-Amz-Expires", "")
        given = request.query.get("X-Amz-Signature", "")
        method = "GET" if request.method == "HEAD" else request.method

        def valid_for(signed_method: str) -> bool:
            return hmac.compare_digest(self._sign(signed_method, object_id, date, expires), given)

        if not valid_for(method):
            if any(valid_for(other) for other in _SIGNED_METHODS if other != method):
                raise _method_not_allowed()
            raise StorageError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        issued = datetime.strptime(date, _AMZ_DATE).replace(tzinfo=UTC).timestamp()
        if time.time() >= issued + int(expires):
            raise StorageError(403, "AccessDenied", "Request has expired")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``/_storage/{object_id}``: PUT to an upload URL, GET or HEAD on a download URL."""
        object_id = request.match_info["object_id"]
        if request.method not in ("GET", "HEAD", "PUT"):
            raise _method_not_allowed()
        self._authorise(request, object_id)
        blob = self._blobs.get(object_id)
        if blob is None or (request.method != "PUT" and not blob.complete):
            raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
        if request.method == "PUT":
            return await self._receive(request, blob)
        content_type = mimetypes.guess_type(blob.filename)[0] or "application/octet-stream"
        return web.FileResponse(blob.path, headers={"Content-Type": content_type})

    async def _receive(self, request: web.Request, blob: Blob) -> web.Response:
        if request.content_length is None:
            raise StorageError(411, "MissingContentLength", "You must provide the Content-Length header.")
        self._refuse_second_put(blob)
        if blob.hold_setting and await self._hold(f"{blob.hold_setting}_before") and _client_gone(request):
            # As a client killed before it sent its upload: nothing lands.
            raise StorageError(400, "RequestTimeout", "The client went away before the upload completed.")
        part = blob.path.with_name(f"{blob.object_id}.part-{uuid.uuid4().hex}")
        size = 0
        try:
            with part.open("wb") as sink:
                # Chunks are small (the reader's buffer size), so writing them inline is cheap.
                async for chunk in request.content.iter_any():
                    sink.write(chunk)
                    size += len(chunk)
            self._refuse_second_put(blob)
            part.replace(blob.path)
        finally:
            part.unlink(missing_ok=True)
        blob.size = size
        blob.completed_at = time.time()
        counters = self._runtime.counters
        counters.uploads += 1
        counters.bytes_uploaded += size
        if blob.on_complete is not None:
            blob.on_complete(blob)
        if blob.hold_setting:
            await self._hold(f"{blob.hold_setting}_after")
        return web.Response(status=200)

    async def _hold(self, setting: str) -> bool:
        """Test support: wait while the config ``setting`` (seconds, re-read as it changes) says so.

        :return: whether the request was held at all.
        """
        runtime = self._runtime
        started = time.monotonic()
        if getattr(runtime.config, setting) <= 0:
            return False
        runtime.held_requests += 1
        try:
            # Polled, not awaited on an event: the setting may be changed (or cleared) meanwhile.
            while time.monotonic() - started < getattr(runtime.config, setting):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        finally:
            runtime.held_requests -= 1
        return True

    @staticmethod
    def _refuse_second_put(blob: Blob) -> None:
        if blob.complete or not blob.uploadable:
            raise StorageError(
                412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
            )
