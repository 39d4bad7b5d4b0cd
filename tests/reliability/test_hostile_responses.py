"""
Hostile or broken answers: result archives that try to write outside their folder, downloads
that are too big or cut short, and error answers that are not the vendor's JSON.

The emulator is an honest vendor: it never serves a zip with ``../`` members, lies about a
``Content-Length`` or answers an HTML error page. So these tests run a small aiohttp server of
their own on 127.0.0.1 that serves exactly the crafted answer each case needs, over real HTTP,
and point the provider's connections at it. The provider code under test is unchanged: the
hook's transports, the operators' result handling, the triggers' async client.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import threading
import warnings
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from aiohttp import web
from helpers import aitems_connection, predone_connection

from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    TransferError,
    TransientApiError,
    UnexpectedResponseError,
    UnsafeArchiveError,
)
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook
from airflow_provider_predone.operators.predone import PredictionOneTrainOperator
from airflow_provider_predone.protocol import predone as api

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SIGNATURE = "f" * 64  # what a presigned URL's signature looks like; must never appear in a message


class HostileServer:
    """
    Serves whatever the test put in :attr:`routes` (path → handler), on 127.0.0.1, in a thread.

    Prediction One's Get API Key is answered by default, so the hook reaches the endpoint the
    test cares about.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {"/v1/external/api-key": self._api_key}
        self.url = ""

    @staticmethod
    async def _api_key(request: web.Request) -> web.StreamResponse:
        return web.json_response({"api_key": "hostile-test-key", "end_date": "2099-01-01T00:00:00Z"})

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=599, text=f"no crafted answer for {request.path}")
        return await handler(request)

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}?X-Amz-Expires=900&X-Amz-Signature={SIGNATURE}"

    @classmethod
    def answering(cls, status: int, body: bytes, content_type: str = "text/html") -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, body=body, headers={"Content-Type": content_type})

        return handler

    def serve(self) -> Iterator[HostileServer]:
        started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()

        async def main() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            stop = asyncio.Event()
            started.set_result((asyncio.get_running_loop(), stop))
            await stop.wait()
            await runner.cleanup()

        thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        thread.start()
        loop, stop = started.result(timeout=10)
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=10)


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    """The crafted server, with both default connections pointing at it (one quick retry)."""
    server = HostileServer()
    for running in server.serve():
        quick = {"max_retries": 1, "retry_wait_seconds": 0.01, "retry_max_wait_seconds": 0.05, "timeout": 5}
        monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(running.url, **quick))
        monkeypatch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(running.url, **quick))
        API_KEYS.clear()
        yield running
        API_KEYS.clear()


# --- result archives --------------------------------------------------------------------------


def zip_of(*members: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16  # how zip/Info-ZIP records a symlink
    return info, target.encode()


def hostile_archives(outside: Path) -> dict[str, bytes]:
    summary = ("model_summary.json", b'{"metrics": {"auc": 0.9}}')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate: it is the point
        duplicate = zip_of(summary, ("model_summary.json", b"{}"))
    return {
        "parent": zip_of(summary, ("../escaped.txt", b"x")),
        "nested_parent": zip_of(summary, ("results/../../escaped.txt", b"x")),
        "absolute": zip_of(summary, (str(outside / "escaped.txt"), b"x")),
        "backslash_parent": zip_of(summary, ("..\\escaped.txt", b"x")),
        "drive_letter": zip_of(summary, ("C:/escaped.txt", b"x")),
        "symlink": zip_of(summary, symlink("link", str(outside))),
        "symlink_then_file_through_it": zip_of(symlink("link", "../.."), ("link/escaped.txt", b"x")),
        "duplicate_member": duplicate,
        "not_a_zip": b"<html><body>Access denied</body></html>",
    }


def every_path(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} | {str(p.relative_to(root)) for p in root.rglob(".*")}


@pytest.mark.parametrize(
    "case",
    [
        "parent",
        "nested_parent",
        "absolute",
        "backslash_parent",
        "drive_letter",
        "symlink",
        "symlink_then_file_through_it",
        "duplicate_member",
        "not_a_zip",
    ],
)
def test_hostile_result_archives_are_refused_and_nothing_escapes(
    hostile: HostileServer, tmp_path: Path, case: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    results = tmp_path / "results"
    archives = hostile_archives(outside)

    async def serve_archive(request: web.Request) -> web.StreamResponse:
        return web.Response(body=archives[case], content_type="application/zip")

    hostile.routes[f"/files/{case}.zip"] = serve_archive
    operator = PredictionOneTrainOperator(task_id="t", train_data="x.csv", model_name="m", config={})
    before = every_path(tmp_path)
    opening = operator.open_result(hostile.file_url(f"{case}.zip"), "Training result", str(results), "job-1")
    with pytest.raises(UnsafeArchiveError) as raised, opening:
        pass
    assert SIGNATURE not in str(raised.value)
    # Nothing was written anywhere: not outside, not in the target (checked before extracting).
    assert every_path(tmp_path) == before, every_path(tmp_path) - before
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not list(tmp_path.rglob("escaped.txt"))


def test_the_same_path_extracts_an_honest_archive(hostile: HostileServer, tmp_path: Path) -> None:
    """Control: the refusals above are about the members, not about the set-up."""
    archive = zip_of(("model_summary.json", b'{"metrics": {"auc": 0.9}}'), ("nested/column_info.csv", b"a,b\n"))

    async def serve_archive(request: web.Request) -> web.StreamResponse:
        return web.Response(body=archive, content_type="application/zip")

    hostile.routes["/files/honest.zip"] = serve_archive
    operator = PredictionOneTrainOperator(task_id="t", train_data="x.csv", model_name="m", config={})
    with operator.open_result(
        hostile.file_url("honest.zip"), "Training result", str(tmp_path / "r"), "job-1"
    ) as result:
        assert result.metrics == {"auc": 0.9}
    assert sorted(every_path(tmp_path / "r" / "job-1")) == ["model_summary.json", "nested", "nested/column_info.csv"]


def test_a_finished_training_with_a_hostile_result_fails_the_task(hostile: HostileServer, tmp_path: Path) -> None:
    """The operator's resume path (status → model id → result) ends on the refusal."""
    archive = zip_of(("../escaped.txt", b"x"))

    async def status(request: web.Request) -> web.StreamResponse:
        url = hostile.file_url("result.zip")
        return web.json_response({"status": "finished", "model_id": 7, "result_url": url})

    async def serve_archive(request: web.Request) -> web.StreamResponse:
        return web.Response(body=archive, content_type="application/zip")

    hostile.routes["/v1/external/models/results"] = status
    hostile.routes["/files/result.zip"] = serve_archive
    operator = PredictionOneTrainOperator(
        task_id="t", train_data="x.csv", model_name="m", config={}, result_dir=str(tmp_path / "results")
    )
    event = {"status": "success", "external_process_id": "p-1", "job_status": "finished", "message": ""}
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./escaped\.txt' has an unsafe path; nothing was extracted"):
        operator.execute_complete({}, event)  # type: ignore[arg-type]
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_archives_declaring_more_than_the_limit_are_refused_before_extracting(tmp_path: Path) -> None:
    """A zip bomb declares its size: the declared total is checked against the limit first."""
    from airflow_provider_predone.files import safe_extract

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * 5_000_000)  # 5 MB that compress to about 5 kB
    assert bomb.stat().st_size < 50_000
    with pytest.raises(UnsafeArchiveError, match="more than 1000000 bytes"):
        safe_extract(bomb, tmp_path / "out", max_bytes=1_000_000)
    assert not (tmp_path / "out").exists()


# --- downloads ----------------------------------------------------------------------------------


def test_a_download_announcing_more_than_max_bytes_is_refused_unread(hostile: HostileServer, tmp_path: Path) -> None:
    sent = []

    async def oversized(request: web.Request) -> web.StreamResponse:
        sent.append(1)
        response = web.StreamResponse(headers={"Content-Length": str(10_000_000)})
        await response.prepare(request)
        await response.write(b"\0" * 64 * 1024)
        return response

    hostile.routes["/files/big.zip"] = oversized
    destination = tmp_path / "big.zip"
    with pytest.raises(TransferError, match="larger than the allowed 1000000 bytes") as raised:
        PredictionOneHook().download(hostile.file_url("big.zip"), destination, label="Result", max_bytes=1_000_000)
    assert SIGNATURE not in str(raised.value)
    assert list(tmp_path.iterdir()) == []  # no file, no partial file
    assert sent == [1]  # refused at the headers, not retried


def test_a_download_streaming_past_max_bytes_without_a_length_is_cut(hostile: HostileServer, tmp_path: Path) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(100):  # 6.4 MB, no Content-Length
            await response.write(b"\0" * 64 * 1024)
        return response

    hostile.routes["/files/endless.zip"] = endless
    with pytest.raises(TransferError, match="larger than the allowed 1000000 bytes"):
        PredictionOneHook().download(
            hostile.file_url("endless.zip"), tmp_path / "endless.zip", label="Result", max_bytes=1_000_000
        )
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_download_is_detected_and_leaves_no_file(hostile: HostileServer, tmp_path: Path) -> None:
    attempts = []

    async def truncated(request: web.Request) -> web.StreamResponse:
        attempts.append(1)
        response = web.StreamResponse(headers={"Content-Length": "200000"})
        await response.prepare(request)
        await response.write(b"\0" * 100_000)
        request.transport.close()  # half of what was announced, then the connection drops
        return response

    hostile.routes["/files/cut.zip"] = truncated
    with pytest.raises(TransientApiError, match="Result") as raised:
        PredictionOneHook().download(hostile.file_url("cut.zip"), tmp_path / "cut.zip", label="Result", max_bytes=10**9)
    assert SIGNATURE not in str(raised.value)
    assert list(tmp_path.iterdir()) == []
    assert len(attempts) == 2  # transient: retried (max_retries=1), then given up


# --- error answers that are not the vendor's JSON -----------------------------------------------

NGINX_502 = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"  # noqa: E501
LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>...</form></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "expected"),
    [
        (
            502,
            NGINX_502,
            "text/html",
            TransientApiError,
            r"List Models \(GET /models\) failed with HTTP 502: '.*502 Bad Gateway",
        ),
        (500, b"", "text/plain", TransientApiError, r"failed with HTTP 500 and an empty body"),
        (503, b"Service Unavailable", "text/plain", TransientApiError, r"HTTP 503: 'Service Unavailable'"),
        (400, b"<html><h1>Bad Request</h1></html>", "text/html", BadRequestError, r"HTTP 400: '<html><h1>Bad Request"),
        (400, b'{"detail": "nope"}', "application/json", BadRequestError, r"HTTP 400: '\{\"detail\": \"nope\"\}'"),
        (404, b"", "text/plain", NotFoundError, r"HTTP 404 and an empty body"),
        (403, b"Forbidden", "text/plain", AuthenticationError, r"HTTP 403: 'Forbidden'.*check the credentials"),
        (401, LOGIN_PAGE, "text/html", AuthenticationError, r"HTTP 401: '<!DOCTYPE html>.*check the credentials"),
        (200, LOGIN_PAGE, "text/html", UnexpectedResponseError, r"answered HTTP 200 with a body that is not JSON"),
        (200, b"", "application/json", UnexpectedResponseError, r"unexpected body \(TypeError: expected a JSON object"),
        (200, b'{"models": "many"}', "application/json", UnexpectedResponseError, r"'models' is not a list"),
        (200, b"[1, 2]", "application/json", UnexpectedResponseError, r"expected a JSON object, got list"),
    ],
)
def test_unreadable_answers_give_typed_errors_that_say_what_came_back(
    hostile: HostileServer, status: int, body: bytes, content_type: str, error: type[ApiError], expected: str
) -> None:
    hostile.routes["/v1/external/models"] = HostileServer.answering(status, body, content_type)
    with pytest.raises(error, match=expected) as raised:
        list(PredictionOneHook().list_models())
    assert type(raised.value) is error
    assert raised.value.http_status == status


@pytest.mark.parametrize(
    ("status", "body", "error", "expected"),
    [
        (
            502,
            NGINX_502,
            TransientApiError,
            r"Train Status Check \(GET /models/results\) for external_process_id=p-1 failed with HTTP 502",
        ),
        (500, b"", TransientApiError, r"HTTP 500 and an empty body"),
        (404, b"<html>Not Found</html>", NotFoundError, r"HTTP 404: '<html>Not Found</html>'"),
        (200, b"<html>maintenance</html>", UnexpectedResponseError, r"not JSON: '<html>maintenance</html>'"),
        (200, b"", UnexpectedResponseError, r"unexpected body"),
    ],
)
async def test_the_triggers_async_client_reads_them_the_same_way(
    hostile: HostileServer, status: int, body: bytes, error: type[ApiError], expected: str
) -> None:
    hostile.routes["/v1/external/models/results"] = HostileServer.answering(status, body)
    async with PredictionOneHook().async_client() as client:
        with pytest.raises(error, match=expected):
            await client.call(api.get_train_status("p-1"))


@pytest.mark.parametrize(
    ("status", "body", "error", "expected"),
    [
        (401, LOGIN_PAGE, AuthenticationError, r"List services \(GET /services\) failed with HTTP 401"),
        (502, NGINX_502, TransientApiError, r"HTTP 502: '.*502 Bad Gateway"),
        (200, b"<html></html>", UnexpectedResponseError, r"not JSON"),
        (500, b"", TransientApiError, r"HTTP 500 and an empty body"),
    ],
)
def test_aitems_answers_that_are_not_the_gateways_json(
    hostile: HostileServer, status: int, body: bytes, error: type[ApiError], expected: str
) -> None:
    hostile.routes["/api/v1/services"] = HostileServer.answering(status, body)
    with pytest.raises(error, match=expected):
        AitemsHook().list_services()


@pytest.mark.parametrize(
    ("status", "body", "error", "expected"),
    [
        (403, b"<html>Forbidden</html>", ApiError, r"HTTP 403: <html>Forbidden</html> \(the presigned URL expired"),
        (500, b"", TransientApiError, r"HTTP 500: empty body"),
        (404, b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>", ApiError, r"HTTP 404: NoSuchKey gone"),
    ],
)
def test_storage_errors_name_the_transfer_and_never_the_signature(
    hostile: HostileServer, tmp_path: Path, status: int, body: bytes, error: type[ApiError], expected: str
) -> None:
    hostile.routes["/files/x.zip"] = HostileServer.answering(status, body)
    with pytest.raises(error, match=expected) as raised:
        PredictionOneHook().download(hostile.file_url("x.zip"), tmp_path / "x.zip", label="Result", max_bytes=10**6)
    assert SIGNATURE not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_the_answers_are_really_served_over_http(hostile: HostileServer) -> None:
    """The crafted server is a real server: a plain client sees the crafted answer."""
    import requests

    hostile.routes["/v1/external/models"] = HostileServer.answering(502, NGINX_502)
    response = requests.get(f"{hostile.url}/v1/external/models", timeout=5)
    assert (response.status_code, response.content) == (502, NGINX_502)
    assert json.loads(requests.get(f"{hostile.url}/v1/external/api-key", timeout=5).text)["api_key"]
    assert os.environ["AIRFLOW_CONN_PREDONE_DEFAULT"].count(hostile.url) == 1
