"""
NCP Object Storage through ``AitemsHook.object_storage``, against a real S3-compatible server
(moto's, a subprocess on 127.0.0.1: ``tests/object_storage.py``), and the emulator's reader.

Requests the client sent are read from the server's own access log, so "ListObjects V1 only"
and "nothing sent before a bad bucket is refused" are checked on the wire.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import socket
import sys
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiohttp import web
from helpers import aitems_connection
from object_storage import ObjectStorageServer
from reliability.test_hostile_responses import HostileServer

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.emulator import object_storage as emulator_storage
from airflow_provider_predone.emulator.config import EmulatorConfig
from airflow_provider_predone.exceptions import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    TransientApiError,
)
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.object_storage import (
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    MULTIPART_THRESHOLD,
    ObjectStorageClient,
)

MiB = 1024 * 1024


def _write(path: Path, size: int) -> str:
    """A file of ``size`` random bytes, written a MiB at a time; answers its MD5."""
    digest = hashlib.md5()  # noqa: S324 - a checksum, not security
    with path.open("wb") as stream:
        for offset in range(0, size, MiB):
            chunk = os.urandom(min(MiB, size - offset))
            digest.update(chunk)
            stream.write(chunk)
    return digest.hexdigest()


def _stored_md5(server: ObjectStorageServer, bucket: str, key: str) -> str:
    digest = hashlib.md5()  # noqa: S324 - a checksum, not security
    body = server.client().get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture
def storage(connections: EmulatorProcess) -> ObjectStorageClient:
    """``aitems_default``'s object storage: the session's moto server."""
    return AitemsHook().object_storage


def test_upload_and_read_back_a_small_file(
    storage: ObjectStorageClient, object_storage_server: ObjectStorageServer, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_bytes(b"USER_ID,AGE\nu1,20\nu2,31\n")

    assert storage.upload(str(source), bucket, "day/users.csv") == source.stat().st_size

    assert storage.exists(bucket, "day/users.csv")
    assert not storage.exists(bucket, "day/items.csv")
    assert storage.list_keys(bucket, "day/") == ["day/users.csv"]
    with storage.open_read(bucket, "day/users.csv") as stream:
        assert stream.readline() == b"USER_ID,AGE\n"
        assert stream.read() == b"u1,20\nu2,31\n"
    with storage.open_read(bucket, "day/users.csv") as stream:  # a file object csv can read as text
        rows = list(csv.reader(io.TextIOWrapper(stream, encoding="utf-8")))
    assert rows == [["USER_ID", "AGE"], ["u1", "20"], ["u2", "31"]]
    assert storage.write_from(bucket, "copy/users.csv", source) == source.stat().st_size
    assert storage.list_keys(bucket, "") == ["copy/users.csv", "day/users.csv"]
    # small files go up in one PUT, not a multipart upload
    assert not [path for _, path, _ in object_storage_server.requests() if bucket in path and "uploads" in path]


def test_an_object_storage_path_is_a_source(storage: ObjectStorageClient, bucket: str, tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    source = tmp_path / "items.csv"
    source.write_bytes(b"ITEM_ID\ni1\n")

    assert storage.upload(ObjectStoragePath(f"file://{source}"), bucket, "items.csv") == 11

    with storage.open_read(bucket, "items.csv") as stream:
        assert stream.read() == b"ITEM_ID\ni1\n"


def test_a_large_file_goes_up_in_parts_with_memory_flat(
    storage: ObjectStorageClient,
    object_storage_server: ObjectStorageServer,
    bucket: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "interactions.csv"
    size = 64 * MiB
    md5 = _write(source, size)

    tracemalloc.start()
    try:
        assert storage.upload(source, bucket, "interactions.csv") == size
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # The parts are read from the file as they are sent (measured: about 6 MiB for 64 or 128 MiB).
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB for a {size // MiB} MiB file"
    assert size > MULTIPART_THRESHOLD
    sent = [(method, path) for method, path, _ in object_storage_server.requests() if "interactions.csv" in path]
    assert ("POST", f"/{bucket}/interactions.csv?uploads") in sent
    assert len([path for method, path in sent if method == "PUT" and "partNumber=" in path]) == 8
    assert _stored_md5(object_storage_server, bucket, "interactions.csv") == md5
    # Airflow's structlog writes the hook's log lines to stdout.
    progress = [line for line in capfd.readouterr().out.splitlines() if "interactions.csv to s3://" in line]
    assert len([line for line in progress if " %" in line]) == 10, progress  # every 10 % of a long transfer
    assert "64.0 MiB transferred" in progress[-1]


def test_a_stream_source_keeps_a_few_parts_in_memory(
    connections: EmulatorProcess, object_storage_server: ObjectStorageServer, bucket: str, tmp_path: Path
) -> None:
    """A source that is no local file (here fsspec's in-memory one) is read part by part."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    source = ObjectStoragePath(f"memory://objstore-test/{bucket}.csv")
    size = 64 * MiB
    local = tmp_path / "data.csv"
    md5 = _write(local, size)
    with local.open("rb") as data, source.open("wb") as stream:
        for chunk in iter(lambda: data.read(MiB), b""):
            stream.write(chunk)
    info = AitemsHook().connection_info
    client = ObjectStorageClient(
        info.object_storage,
        info.access_key,
        info.secret_key,
        info.settings,
        multipart_chunksize=5 * MiB,
        max_concurrency=2,
    )

    tracemalloc.start()
    try:
        assert client.upload(source, bucket, "stream.csv") == size
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        source.unlink()

    # about max_concurrency parts of 5 MiB (and their copies in flight), not the file's 64 MiB
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert _stored_md5(object_storage_server, bucket, "stream.csv") == md5


def test_a_missing_bucket_is_named_before_any_byte_is_sent(
    storage: ObjectStorageClient, object_storage_server: ObjectStorageServer, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_bytes(b"USER_ID\nu1\n")
    missing = "no-such-bucket-objstore"

    with pytest.raises(InvalidInputError, match=f"bucket '{missing}' does not exist"):
        storage.upload(source, missing, "users.csv")
    with pytest.raises(InvalidInputError, match=f"bucket '{missing}' does not exist"):
        storage.check_bucket(missing)
    with pytest.raises(InvalidInputError, match=f"bucket '{missing}' does not exist"):
        storage.list_keys(missing, "")
    with pytest.raises(InvalidInputError, match=f"bucket '{missing}' does not exist"):
        storage.exists(missing, "users.csv")

    sent = [(method, path) for method, path, _ in object_storage_server.requests() if missing in path]
    assert ("HEAD", f"/{missing}") in sent
    assert not [path for method, path in sent if method in ("PUT", "POST")]


@pytest.mark.parametrize(
    ("bucket_name", "key", "field"),
    [
        ("Shop_Data", "users.csv", "bucket"),
        ("ab", "users.csv", "bucket"),
        ("shop-data", "", "key"),
        ("shop-data", "/users.csv", "key"),
        ("shop-data", "users\n.csv", "key"),
    ],
)
def test_bad_names_fail_before_any_request(
    storage: ObjectStorageClient,
    object_storage_server: ObjectStorageServer,
    tmp_path: Path,
    bucket_name: str,
    key: str,
    field: str,
) -> None:
    source = tmp_path / "users.csv"
    source.write_bytes(b"USER_ID\nu1\n")
    before = len(object_storage_server.requests())

    with pytest.raises(InvalidInputError, match=f"^{field}: "):
        storage.upload(source, bucket_name, key)

    assert len(object_storage_server.requests()) == before


def test_a_missing_source_fails_before_any_request(
    storage: ObjectStorageClient, object_storage_server: ObjectStorageServer, bucket: str, tmp_path: Path
) -> None:
    before = len(object_storage_server.requests())

    with pytest.raises(InvalidInputError, match=r"source: .*missing\.csv does not exist"):
        storage.upload(tmp_path / "missing.csv", bucket, "users.csv")

    assert len(object_storage_server.requests()) == before


def test_listing_pages_with_list_objects_v1(
    storage: ObjectStorageClient, object_storage_server: ObjectStorageServer, bucket: str
) -> None:
    """NCP has no ListObjects V2: more than one page (1,000 keys) is listed with V1's Marker."""
    client = object_storage_server.client()
    keys = [f"interactions/part-{n:05d}.csv" for n in range(1005)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    client.put_object(Bucket=bucket, Key="other.csv", Body=b"x")

    assert storage.list_keys(bucket, "interactions/") == keys

    listings = [path for method, path, _ in object_storage_server.requests() if method == "GET" and "prefix=" in path]
    listings = [path for path in listings if path.startswith(f"/{bucket}?")]
    assert len(listings) == 2
    assert all("marker=" in path for path in listings)
    assert not [path for path in listings if "list-type=2" in path]
    with pytest.raises(InvalidInputError, match="holds more than 1000 objects"):
        storage.list_keys(bucket, "interactions/", max_keys=1000)


def test_a_missing_object_is_not_found(storage: ObjectStorageClient, bucket: str) -> None:
    with (
        pytest.raises(NotFoundError, match=f"s3://{bucket}/nothing.csv.*does not exist") as raised,
        storage.open_read(bucket, "nothing.csv"),
    ):
        pass
    assert raised.value.endpoint == "Object Storage GetObject"
    assert raised.value.http_status == 404


# --- keys checked by the server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def checking_server() -> Iterator[ObjectStorageServer]:
    """A server of its own that checks signatures and keys (moto's IAM simulation)."""
    with ObjectStorageServer(auth=True) as server:
        yield server


def _connection(monkeypatch: pytest.MonkeyPatch, endpoint: str, login: str, password: str, **extra: object) -> str:
    conn = {
        "conn_type": "aitems",
        "host": "http://127.0.0.1:9",  # the AiTEMS API is not called
        "login": login,
        "password": password,
        "extra": {"object_storage_endpoint": endpoint, "max_retries": 0, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AITEMS_OBJSTORE", json.dumps(conn))
    return "aitems_objstore"


def test_a_wrong_secret_key_is_an_authentication_error(
    checking_server: ObjectStorageServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    access_key, secret_key = checking_server.create_access_key()
    bucket = checking_server.create_bucket(keys=(access_key, secret_key))
    source = tmp_path / "users.csv"
    source.write_bytes(b"USER_ID\nu1\n")
    right = AitemsHook(_connection(monkeypatch, checking_server.endpoint, access_key, secret_key)).object_storage
    assert right.upload(source, bucket, "users.csv") == 11  # the server does check: the right keys pass

    wrong_secret = "wrong-secret-key-objstore"
    wrong = AitemsHook(_connection(monkeypatch, checking_server.endpoint, access_key, wrong_secret)).object_storage
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError, match=r"HeadBucket .* refused .*access key and secret key") as on_upload:
        wrong.upload(source, bucket, "users.csv")  # HEAD: a bare 403, no code
    with pytest.raises(AuthenticationError, match="SignatureDoesNotMatch") as on_listing:
        wrong.list_keys(bucket, "")
    assert on_listing.value.code == "SignatureDoesNotMatch"
    unknown = AitemsHook(_connection(monkeypatch, checking_server.endpoint, "AKIAUNKNOWN", secret_key)).object_storage
    with pytest.raises(AuthenticationError, match="InvalidAccessKeyId"):
        unknown.list_keys(bucket, "")

    logged = capfd.readouterr().out + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (wrong_secret, secret_key):
        assert secret not in str(on_upload.value) + str(on_listing.value)
        assert secret not in repr(wrong)
        assert secret not in logged


# --- what goes on the wire, answers crafted ----------------------------------------------------


@pytest.fixture
def crafted() -> Iterator[HostileServer]:
    yield from HostileServer().serve()


def test_no_aws_only_checksum_headers_are_sent(
    crafted: HostileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """boto3 >= 1.36 adds CRC32 headers and aws-chunked bodies by default; S3-compatible stores refuse them."""
    seen: list[dict[str, str]] = []

    async def bucket_answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def object_answer(request: web.Request) -> web.StreamResponse:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        await request.read()
        return web.Response(status=200, headers={"ETag": '"0"'})

    crafted.routes.update({"/shop-data": bucket_answer, "/shop-data/users.csv": object_answer})
    source = tmp_path / "users.csv"
    source.write_bytes(b"USER_ID\nu1\n")
    storage = AitemsHook(_connection(monkeypatch, crafted.url, "AKIATEST", "secret-objstore")).object_storage

    storage.upload(source, "shop-data", "users.csv")

    assert len(seen) == 1
    headers = seen[0]
    assert not [name for name in headers if name.startswith(("x-amz-checksum-", "x-amz-sdk-checksum"))], headers
    assert "aws-chunked" not in headers.get("content-encoding", "")
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIATEST/")
    assert "/kr-standard/s3/aws4_request" in headers["authorization"]


def test_server_errors_are_transient_and_retries_bounded(
    crafted: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"

    async def slow_down(request: web.Request) -> web.StreamResponse:
        calls.append(request.method)
        return web.Response(status=503, body=body, headers={"Content-Type": "application/xml"})

    crafted.routes["/shop-data"] = slow_down
    conn_id = _connection(monkeypatch, crafted.url, "AKIATEST", "secret-objstore", max_retries=1)

    with pytest.raises(TransientApiError, match="Object Storage ListObjects of bucket 'shop-data'") as raised:
        AitemsHook(conn_id).object_storage.list_keys("shop-data", "")

    assert len(calls) == 2  # max_retries=1: one retry
    assert raised.value.code == "SlowDown"
    assert raised.value.vendor_message == "Please reduce your request rate."


def test_requests_go_through_the_connections_proxy(crafted: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint's host does not resolve: the listing arrives only through the ``proxies`` extra."""
    seen: list[tuple[str, str]] = []
    listing = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>shop-data</Name><Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys><IsTruncated>false"
        b"</IsTruncated><Contents><Key>users.csv</Key><Size>11</Size></Contents></ListBucketResult>"
    )

    async def as_proxy(request: web.Request) -> web.StreamResponse:
        seen.append((request.host, request.path))
        return web.Response(status=200, body=listing, headers={"Content-Type": "application/xml"})

    crafted.routes["/shop-data"] = as_proxy
    conn_id = _connection(
        monkeypatch, "http://objstore.invalid:9000", "AKIATEST", "secret-objstore", proxies=crafted.url
    )

    assert AitemsHook(conn_id).object_storage.list_keys("shop-data", "") == ["users.csv"]
    assert [(host.partition(":")[0], path) for host, path in seen] == [("objstore.invalid", "/shop-data")]


def test_an_unreachable_endpoint_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn_id = _connection(monkeypatch, f"http://127.0.0.1:{port}", "AKIATEST", "secret-objstore", trust_env=False)

    with pytest.raises(TransientApiError, match=f"Object Storage HeadBucket of bucket 'shop-data' at .*:{port}"):
        AitemsHook(conn_id).object_storage.check_bucket("shop-data")


# --- the connection ------------------------------------------------------------------------------


def test_the_connection_names_endpoint_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AITEMS_PLAIN", aitems_connection("http://127.0.0.1:9"))
    assert AitemsHook("aitems_plain").connection_info.object_storage.endpoint == DEFAULT_ENDPOINT
    assert AitemsHook("aitems_plain").connection_info.object_storage.region == DEFAULT_REGION

    conn_id = _connection(
        monkeypatch, "https://jp.object.ncpstorage.com/", "AKIATEST", "secret", object_storage_region="jp-standard"
    )
    storage = AitemsHook(conn_id).object_storage
    assert (storage.settings.endpoint, storage.settings.region) == ("https://jp.object.ncpstorage.com", "jp-standard")


@pytest.mark.parametrize(
    ("extra", "value"),
    [
        ("object_storage_endpoint", "kr.object.ncloudstorage.com"),
        ("object_storage_endpoint", "https://user:pw@kr.object.ncloudstorage.com"),
        ("object_storage_region", "KR Standard"),
    ],
)
def test_a_bad_extra_is_named(monkeypatch: pytest.MonkeyPatch, extra: str, value: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AITEMS_BAD", aitems_connection("http://127.0.0.1:9", **{extra: value}))

    with pytest.raises(InvalidInputError, match=f"extra '{extra}'"):
        _ = AitemsHook("aitems_bad").object_storage


def test_without_boto3_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, connections: EmulatorProcess
) -> None:
    from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

    monkeypatch.setitem(sys.modules, "boto3", None)  # what a missing package looks like to import

    with pytest.raises(AirflowOptionalProviderFeatureException, match=r"airflow-provider-predone\[aitems\]"):
        _ = AitemsHook().object_storage


# --- the emulator's reader -----------------------------------------------------------------------


def test_the_emulator_reads_datasets_files(object_storage_server: ObjectStorageServer, bucket: str) -> None:
    client = object_storage_server.client()
    for n in range(3):
        client.put_object(Bucket=bucket, Key=f"users/part-{n}.csv", Body=f"USER_ID\nu{n}\n".encode())
    config = EmulatorConfig(object_storage_endpoint=object_storage_server.endpoint)

    assert emulator_storage.list_keys(config, bucket, "users/") == [f"users/part-{n}.csv" for n in range(3)]
    assert emulator_storage.read_object(config, bucket, "users/part-1.csv") == b"USER_ID\nu1\n"
    with pytest.raises(emulator_storage.ObjectStorageReadError, match="larger than 4 bytes") as too_large:
        emulator_storage.read_object(config, bucket, "users/part-1.csv", max_bytes=4)
    assert too_large.value.code == "TooLarge"
    with pytest.raises(emulator_storage.ObjectStorageReadError, match=r"users/none\.csv does not exist") as no_key:
        emulator_storage.read_object(config, bucket, "users/none.csv")
    assert no_key.value.code == "NoSuchKey"
    with pytest.raises(emulator_storage.ObjectStorageReadError, match="bucket 'no-such-bucket' does not exist"):
        emulator_storage.list_keys(config, "no-such-bucket", "")
    with pytest.raises(emulator_storage.ObjectStorageReadError, match="--object-storage-endpoint") as off:
        emulator_storage.read_object(EmulatorConfig(), bucket, "users/part-1.csv")
    assert off.value.code == "NotConfigured"


def test_the_emulator_refuses_an_endpoint_that_is_no_url() -> None:
    with pytest.raises(ValueError, match="object_storage_endpoint must be an http"):
        EmulatorConfig(object_storage_endpoint="127.0.0.1:9000")
