"""The emulator's web application: routing, faults, error rendering, admin endpoints, serving."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import ssl
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from airflow_provider_predone import _event_loop

from .aitems import Aitems
from .config import EmulatorConfig
from .errors import ApiError
from .faults import FAULT_KINDS
from .predone import PredictionOne
from .runtime import Runtime
from .storage import Storage

ADMIN_PREFIX = "/_emulator/"
_CLIENT_MAX_SIZE = 64 * 1024 * 1024
_READ_BUFFER = 256 * 1024
_STARTUP_TIMEOUT = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PEER_LOG = logging.getLogger("predone_emulator.peers")


class Emulator:
    """Every part of one emulator instance, wired together.

    :param config: the settings (changed in place by ``POST /_emulator/config``).
    :param data_dir: where the blobs go (a directory the emulator may empty).
    """

    def __init__(self, config: EmulatorConfig, data_dir: Path) -> None:
        workers = min(4, os.cpu_count() or 1)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predone-emulator")
        self.runtime = Runtime(config, self.executor)
        self.storage = Storage(self.runtime, data_dir)
        self.predone = PredictionOne(self.runtime, self.storage)
        self.aitems = Aitems(self.runtime)

    def reset(self) -> None:
        self.runtime.reset()
        self.storage.reset()
        self.predone.reset()
        self.aitems.reset()

    def state(self) -> dict[str, Any]:
        return {
            **self.runtime.counters.as_dict(),
            "faults": dict(self.runtime.faults.counts),
            "held_requests": self.runtime.held_requests,
        }

    def secrets(self) -> dict[str, Any]:
        config, predone = self.runtime.config, self.predone
        return {
            "secret_key": config.secret_key,
            "aitems_secret_key": config.aitems_secret_key,
            "api_keys": list(predone.api_keys),
            "classifier_api_keys": [classifier.api_key for classifier in predone.classifiers.values()],
            "url_signatures": list(self.storage.signatures),
        }

    # Admin endpoints ---------------------------------------------------------------------------

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def get_secrets(self, request: web.Request) -> web.Response:
        return web.json_response(self.secrets())

    async def post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response(self.state())

    async def post_config(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json() if request.can_read_body else {}
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object")
            self.runtime.config.update(changes)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if "fault_seed" in changes:
            self.runtime.faults.reseed(self.runtime.config.fault_seed)
        return web.json_response(self.runtime.config.as_dict())

    async def post_expire_keys(self, request: web.Request) -> web.Response:
        self.predone.expire_keys()
        return web.json_response({"expired": len(self.predone.api_keys)})

    async def post_finish_jobs(self, request: web.Request) -> web.Response:
        return web.json_response({"finished": self.predone.finish_jobs() + self.aitems.finish_jobs()})

    # Middlewares -------------------------------------------------------------------------------

    @web.middleware
    async def inject_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """One fault draw per vendor request (see "Faults" in docs/emulator.md)."""
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        runtime = self.runtime
        runtime.counters.requests += 1
        kinds = runtime.config.fault_kinds
        kind = runtime.faults.draw(runtime.config.fault_rate, tuple(kinds.split(",")) if kinds else FAULT_KINDS)
        if kind is None:
            return await handler(request)
        if kind.startswith("http_"):
            status = int(kind.removeprefix("http_"))
            headers = {"Retry-After": "1"} if status == 429 else None
            return web.Response(status=status, text=f"emulated transient fault ({kind})\n", headers=headers)
        if kind == "reset":
            return _drop_connection(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        if kind == "slow":
            await asyncio.sleep(runtime.config.slow_seconds)
            return response
        return _drop_connection(request)

    @staticmethod
    @web.middleware
    async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()

    @staticmethod
    @web.middleware
    async def log_peer(request: web.Request, handler: Handler) -> web.StreamResponse:
        """``--verbose``: each request's client address and port, so a test can tell which
        connection (a proxy's, say) carried it. The query is left out: it holds signatures."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        host, port = (peer[0], peer[1]) if peer else ("?", 0)
        _PEER_LOG.info("peer %s:%d %s %s", host, port, request.method, request.path)
        return await handler(request)

    @staticmethod
    @web.middleware
    async def require_client_cert(request: web.Request, handler: Handler) -> web.StreamResponse:
        """``--tls-client-ca``: no client certificate, no service (nginx's answer and words)."""
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        if ssl_object is None or not ssl_object.getpeercert():
            return web.Response(status=400, text="400 Bad Request: No required SSL certificate was sent\n")
        return await handler(request)

    def application(self) -> web.Application:
        middlewares = [self.inject_faults, self.render_errors]
        if self.runtime.config.tls_client_ca:
            middlewares.insert(0, self.require_client_cert)
        if self.runtime.config.verbose:
            middlewares.insert(0, self.log_peer)
        app = web.Application(middlewares=middlewares, client_max_size=_CLIENT_MAX_SIZE)
        app.add_routes(self.predone.routes())
        app.add_routes(self.aitems.routes())
        app.add_routes(
            [
                web.route("*", "/_storage/{object_id}", self.storage.handle),
                web.get(f"{ADMIN_PREFIX}state", self.get_state),  # counters only: always on
            ]
        )
        if self.runtime.config.test_controls:
            # They list every issued key or change the server: only for tests (404 otherwise).
            app.add_routes(
                [
                    web.get(f"{ADMIN_PREFIX}secrets", self.get_secrets),
                    web.post(f"{ADMIN_PREFIX}reset", self.post_reset),
                    web.post(f"{ADMIN_PREFIX}config", self.post_config),
                    web.post(f"{ADMIN_PREFIX}expire-keys", self.post_expire_keys),
                    web.post(f"{ADMIN_PREFIX}finish-jobs", self.post_finish_jobs),
                ]
            )
        return app


def _drop_connection(request: web.Request) -> web.Response:
    """Close the connection without an answer; the response returned cannot be written."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response()


def server_ssl_context(config: EmulatorConfig) -> ssl.SSLContext | None:
    """The server's TLS settings (``tls_cert``, ``tls_key``, ``tls_client_ca``); ``None`` for plain HTTP."""
    if config.tls_cert is None:
        if config.tls_key or config.tls_client_ca:
            raise ValueError("--tls-key and --tls-client-ca need --tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_client_ca:
        # As nginx's "ssl_verify_client on": a certificate the CA did not sign fails the
        # handshake; none at all gets an HTTP 400 (see require_client_cert), which a client can
        # read, unlike a handshake that asyncio closes before its alert is sent.
        context.load_verify_locations(config.tls_client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


@asynccontextmanager
async def running(config: EmulatorConfig) -> AsyncIterator[str]:
    """Serve the emulator on the current event loop; yields its base URL.

    :param config: the settings; ``port`` 0 picks a free port.
    """
    if config.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    temporary = None if config.data_dir else tempfile.mkdtemp(prefix="predone-emulator-")
    data_dir = Path(temporary or str(config.data_dir)) / "objects"
    emulator = Emulator(config, data_dir)
    runner = web.AppRunner(
        emulator.application(),
        access_log=logging.getLogger("aiohttp.access") if config.verbose else None,
        read_bufsize=_READ_BUFFER,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    try:
        tls = server_ssl_context(config)
        site = web.TCPSite(runner, config.host, config.port, backlog=4096, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        host = f"[{config.host}]" if ":" in config.host else config.host
        yield f"{'https' if tls else 'http'}://{host}:{port}"
    finally:
        await runner.cleanup()
        emulator.executor.shutdown(wait=False, cancel_futures=True)
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


@contextmanager
def serve_in_thread(**options: Any) -> Iterator[str]:
    """Run the emulator in a background thread with its own event loop; yields the base URL.

    :param options: :class:`EmulatorConfig` fields (``job_seconds=1.0``, ...).
    """
    config = EmulatorConfig(**options)
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, str]] = Future()

    async def serve() -> None:
        stop = asyncio.Event()
        async with running(config) as url:
            started.set_result((asyncio.get_running_loop(), stop, url))
            await stop.wait()

    def thread_main() -> None:
        try:
            _event_loop.run(serve())
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=thread_main, name="predone-emulator", daemon=True)
    thread.start()
    loop, stop, url = started.result(timeout=_STARTUP_TIMEOUT)
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
