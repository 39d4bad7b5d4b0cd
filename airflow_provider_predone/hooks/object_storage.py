"""
NCP Object Storage, where AiTEMS reads the datasets' files: an S3-compatible store signed with
the same access key and secret key as the AiTEMS API.

:class:`ObjectStorageClient` speaks S3 through boto3 (the ``aitems`` extra, imported when the
first client is built) the way NCP accepts it: Signature V4, path-style addresses, ListObjects
V1 only (NCP has no V2), no checksums beyond what a request requires (boto3's default CRC
headers are an AWS extension). Uploads stream from the file in parts, whatever its size.
Errors come out as the provider's typed exceptions, without keys or signed URLs.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    NotFoundError,
    TransientApiError,
    UnexpectedResponseError,
)
from airflow_provider_predone.hooks._http import Progress, network_failure
from airflow_provider_predone.hooks.connection import HttpSettings

#: NCP's Korean region, the one AiTEMS datasets live in.
DEFAULT_ENDPOINT = "https://kr.object.ncloudstorage.com"
DEFAULT_REGION = "kr-standard"
#: Files above this size go up in parts (S3's smallest part is 5 MiB).
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
#: Parts sent at once; a source that is not a local file keeps at most this many parts (and a
#: few queued) in memory, so memory stays flat in the file's size.
MAX_CONCURRENCY = 4
#: Most keys :meth:`ObjectStorageClient.list_keys` collects before refusing the prefix.
MAX_LISTED_KEYS = 100_000
#: Longest server message quoted in an error.
_MESSAGE_LIMIT = 300
_LOG = logging.getLogger(__name__)

# S3's bucket naming rules (NCP follows them): 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MISSING_BUCKET = frozenset({"NoSuchBucket"})
_MISSING_KEY = frozenset({"NoSuchKey", "NotFound"})
_REFUSED = frozenset(
    {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidSecurity", "AuthorizationHeaderMalformed"}
)
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "TooManyRequests",
    }
)


@dataclass(frozen=True)
class ObjectStorageSettings:
    """
    Where a connection's Object Storage is: the ``object_storage_endpoint`` and
    ``object_storage_region`` extras.

    :param endpoint: the S3 endpoint URL (NCP's Korean one by default).
    :param region: the region signed into each request (``kr-standard`` by default).
    """

    endpoint: str = DEFAULT_ENDPOINT
    region: str = DEFAULT_REGION

    @classmethod
    def from_extras(cls, conn_id: str, extras: dict[str, Any]) -> ObjectStorageSettings:
        """Read the two extras; a bad value is an :exc:`InvalidInputError` naming it."""
        endpoint = extras.get("object_storage_endpoint") or DEFAULT_ENDPOINT
        region = extras.get("object_storage_region") or DEFAULT_REGION
        parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise InvalidInputError(
                f"Connection {conn_id!r}: extra 'object_storage_endpoint' must be an http:// or https:// URL "
                f"with a host, such as {DEFAULT_ENDPOINT}, got {endpoint!r}"
            )
        if parts.username or parts.password:
            raise InvalidInputError(
                f"Connection {conn_id!r}: extra 'object_storage_endpoint' must not carry credentials "
                "(the access key and secret key sign each request)"
            )
        if not isinstance(region, str) or not _REGION.match(region):
            raise InvalidInputError(
                f"Connection {conn_id!r}: extra 'object_storage_region' must be a region name such as "
                f"{DEFAULT_REGION}, us-standard or jp-standard, got {region!r}"
            )
        return cls(endpoint=endpoint.rstrip("/"), region=region)


def check_bucket_name(bucket: Any, field: str = "bucket") -> str:
    """``bucket`` if it is a valid bucket name, else an :exc:`InvalidInputError` naming ``field``."""
    if not isinstance(bucket, str) or not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidInputError(
            f"{field}: {bucket!r} is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens, "
            "beginning and ending with a letter or digit)"
        )
    return bucket


def check_key(key: Any, field: str = "key") -> str:
    """``key`` if it is a valid object key, else an :exc:`InvalidInputError` naming ``field``."""
    if not isinstance(key, str) or not key or len(key.encode()) > 1024 or key.startswith("/"):
        raise InvalidInputError(f"{field}: {key!r} is not an object key (1 to 1024 bytes, not starting with '/')")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidInputError(f"{field}: {key!r} holds a control character")
    return key


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

        raise AirflowOptionalProviderFeatureException(
            "NCP Object Storage needs boto3: pip install 'airflow-provider-predone[aitems]'"
        ) from None
    return boto3


class ObjectStorageClient:
    """
    Read and write objects of NCP Object Storage (or any S3-compatible store).

    Built by :attr:`AitemsHook.object_storage <airflow_provider_predone.hooks.aitems.AitemsHook.object_storage>`
    from the connection; thread-safe, like the boto3 client it holds.

    :param settings: the endpoint and region.
    :param access_key: the access key ID (the AiTEMS connection's login).
    :param secret_key: the secret key (the connection's password); never logged.
    :param http: timeouts, retries and networking (proxies, TLS verification, client certificate).
    :param log: where progress and retries are logged.
    :param multipart_threshold: files larger than this go up in parts.
    :param multipart_chunksize: size of each part (S3's minimum is 5 MiB).
    :param max_concurrency: parts sent at once.
    """

    def __init__(
        self,
        settings: ObjectStorageSettings,
        access_key: str,
        secret_key: str,
        http: HttpSettings,
        *,
        log: logging.Logger | Any = _LOG,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNKSIZE,
        max_concurrency: int = MAX_CONCURRENCY,
    ) -> None:
        self.settings = settings
        self._http = http
        self.log = log
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = max(multipart_chunksize, 5 * 1024 * 1024)
        self.max_concurrency = max(1, max_concurrency)
        self._s3 = self._client(access_key, secret_key)

    def __repr__(self) -> str:
        return f"ObjectStorageClient(endpoint={self.settings.endpoint!r}, region={self.settings.region!r})"

    def _client(self, access_key: str, secret_key: str) -> Any:
        boto3 = _boto3()
        from botocore.config import Config

        network = self._http.network
        proxies: dict[str, str] | None = dict(network.proxies)
        if not proxies and network.trust_env:
            proxies = None  # botocore then reads HTTP(S)_PROXY and NO_PROXY
        options: dict[str, Any] = {
            "signature_version": "s3v4",
            "s3": {"addressing_style": "path"},
            # AWS-only integrity headers (boto3 >= 1.36 sends them by default) break other S3 stores.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "retries": {"total_max_attempts": self._http.max_retries + 1, "mode": "standard"},
            "connect_timeout": self._http.timeout,
            # Every S3 call may be a transfer: the read timeout is the silence tolerated in one.
            "read_timeout": max(self._http.timeout, self._http.transfer_timeout),
            "proxies": proxies,
            "max_pool_connections": max(10, self.max_concurrency + 2),
        }
        if network.cert:
            options["client_cert"] = network.cert
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.settings.endpoint,
            region_name=self.settings.region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            verify=network.ca_bundle or network.verify,
            config=Config(**options),
        )

    # --- buckets and keys ---

    def check_bucket(self, bucket: str) -> None:
        """
        Check that ``bucket`` exists and the keys may use it (``HeadBucket``).

        :raises InvalidInputError: the bucket does not exist (it is named) or its name is invalid.
        :raises AuthenticationError: the keys are refused or may not use the bucket.
        """
        check_bucket_name(bucket)
        try:
            self._s3.head_bucket(Bucket=bucket)
        except Exception as exc:
            raise self._error(exc, "HeadBucket", bucket, None) from None

    def exists(self, bucket: str, key: str) -> bool:
        """Whether ``s3://bucket/key`` exists (``HeadObject``); a missing bucket is an error naming it."""
        check_bucket_name(bucket)
        check_key(key)
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            error = self._error(exc, "HeadObject", bucket, key)
            if not isinstance(error, NotFoundError):
                raise error from None
            # HEAD answers a bare 404 for a missing bucket as for a missing key: tell them apart.
            self.check_bucket(bucket)
            return False
        return True

    def list_keys(self, bucket: str, prefix: str, *, max_keys: int = MAX_LISTED_KEYS) -> list[str]:
        """
        The keys under ``prefix``, sorted, listed with ListObjects V1 page by page (by ``Marker``).

        :param bucket: the bucket.
        :param prefix: what the keys begin with (``""`` for all).
        :param max_keys: most keys collected; a prefix holding more is refused.
        :raises InvalidInputError: the bucket does not exist, or the prefix holds more than ``max_keys``.
        """
        check_bucket_name(bucket)
        if not isinstance(prefix, str) or len(prefix.encode()) > 1024:
            raise InvalidInputError(f"prefix: {prefix!r} is not a key prefix (text of at most 1024 bytes)")
        keys: list[str] = []
        marker = ""
        while True:
            try:
                page = self._s3.list_objects(Bucket=bucket, Prefix=prefix, Marker=marker)
            except Exception as exc:
                raise self._error(exc, "ListObjects", bucket, None) from None
            contents = page.get("Contents") or []
            keys += [item["Key"] for item in contents if isinstance(item.get("Key"), str)]
            if len(keys) > max_keys:
                raise InvalidInputError(f"s3://{bucket}/{prefix} holds more than {max_keys} objects")
            if not page.get("IsTruncated") or not contents:
                return sorted(keys)
            next_marker = page.get("NextMarker") or contents[-1].get("Key")
            if not isinstance(next_marker, str) or next_marker == marker:
                raise self._unexpected("ListObjects", bucket, "a truncated page without a marker to go on from")
            marker = next_marker

    # --- transfers ---

    def upload(self, source: Any, bucket: str, key: str) -> int:
        """
        Put a file into ``s3://bucket/key``, streamed (in parts above ``multipart_threshold``),
        logging progress; answers the bytes sent.

        :param source: a local path (``str`` or ``Path``) or an ``ObjectStoragePath`` (``file://`` included).
        :param bucket: the bucket (checked to exist first, so a missing one is named before any byte moves).
        :param key: the object's key.
        :raises InvalidInputError: the source is missing, empty or unreadable, or the bucket does not exist.
        """
        from airflow_provider_predone.files.locations import resolve

        check_bucket_name(bucket)
        check_key(key)
        data = resolve("source", source, extensions=())
        self.check_bucket(bucket)
        label = f"Upload of {data.name} to s3://{bucket}/{key}"
        progress = _SharedProgress(self.log, label, data.size)
        config = self._transfer_config()
        local = _local_file(data.location)
        try:
            if local is not None:
                # boto3 reads each part from the file as it is sent: nothing is held in memory.
                self._s3.upload_file(local, bucket, key, Config=config, Callback=progress.add)
            else:
                # Through the path's filesystem, not ObjectStoragePath.open (which reports lineage).
                with data.location.fs.open(data.location.path, "rb") as stream:
                    self._s3.upload_fileobj(stream, bucket, key, Config=config, Callback=progress.add)
        except Exception as exc:
            raise self._error(exc, "PutObject", bucket, key) from None
        progress.done()
        return progress.sent

    def write_from(self, bucket: str, key: str, local_path: str | os.PathLike[str]) -> int:
        """Write the local file ``local_path`` to ``s3://bucket/key`` (see :meth:`upload`); answers its size."""
        return self.upload(Path(local_path), bucket, key)

    @contextmanager
    def open_read(self, bucket: str, key: str) -> Iterator[IO[bytes]]:
        """
        ``s3://bucket/key`` as a binary file object read as it streams (``GetObject``).

        :raises NotFoundError: the object does not exist.
        :raises InvalidInputError: the bucket does not exist.
        """
        check_bucket_name(bucket)
        check_key(key)
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise self._error(exc, "GetObject", bucket, key) from None
        raw = _BodyReader(answer["Body"], lambda exc: self._error(exc, "GetObject", bucket, key))
        with io.BufferedReader(raw, buffer_size=256 * 1024) as stream:
            yield stream

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",
        )
        # s3transfer's bound on parts read ahead from a stream (10 by default): with it, what a
        # stream upload holds is a few parts, whatever the file's size.
        config.max_in_memory_upload_chunks = self.max_concurrency
        return config

    # --- errors ---

    def _error(self, exc: Exception, operation: str, bucket: str, key: str | None) -> Exception:
        """A boto3 failure as the provider's typed error, naming the bucket or object, never a key or URL."""
        from botocore.exceptions import BotoCoreError, ClientError

        endpoint = f"Object Storage {operation}"
        where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
        label = f"{endpoint} of {where} at {self.settings.endpoint}"
        if isinstance(exc, ApiError | InvalidInputError):
            return exc
        if not isinstance(exc, ClientError):
            if isinstance(exc, BotoCoreError | OSError):
                return network_failure(label, endpoint, self.settings.endpoint, exc, self._http.network)
            return exc
        error = exc.response.get("Error") or {}
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(error.get("Code") or status or "")[:64]
        message = _bounded(error.get("Message"))
        details = {"endpoint": endpoint, "http_status": status, "code": code, "vendor_message": message or None}
        said = f" ({code}{': ' + message if message else ''})"
        if code in _MISSING_BUCKET or (key is None and status == 404):
            return InvalidInputError(
                f"bucket {bucket!r} does not exist at {self.settings.endpoint} (region {self.settings.region}); "
                "create it in the NCP console or correct the bucket name"
            )
        if code in _MISSING_KEY or status == 404:
            return NotFoundError(f"{label}: the object does not exist{said}", **details)
        if code in _REFUSED or status == 403:
            return AuthenticationError(
                f"{label}: refused{said}; check the connection's access key and secret key, and that they may "
                "use this bucket",
                **details,
            )
        if code in _TRANSIENT or status in (429, 500, 502, 503, 504) or (status or 0) >= 500:
            return TransientApiError(f"{label} failed{said}", **details)
        return BadRequestError(f"{label} failed{said}", **details)

    def _unexpected(self, operation: str, bucket: str, what: str) -> Exception:
        return UnexpectedResponseError(
            f"Object Storage {operation} of bucket {bucket!r} answered {what}", endpoint=f"Object Storage {operation}"
        )


def _local_file(location: Any) -> str | None:
    """The local file path of ``location`` (a ``Path`` or a ``file://`` ``ObjectStoragePath``), else ``None``."""
    # An ObjectStoragePath is a pathlib.Path on Airflow 3.0 (universal_pathlib 0.2): its protocol tells.
    protocol = getattr(location, "protocol", None)
    if protocol is None:
        path: str = os.fspath(location)
        return path
    if protocol in ("", "file", "local"):
        return str(location.path)
    return None


def _bounded(text: Any) -> str:
    """A server's message, on one line and short (it is wire data, quoted in logs)."""
    if not isinstance(text, str):
        return ""
    line = " ".join(text.split())
    return line if len(line) <= _MESSAGE_LIMIT else line[:_MESSAGE_LIMIT] + "..."


class _SharedProgress(Progress):
    """:class:`Progress` fed by boto3's transfer threads at once."""

    def __init__(self, log: logging.Logger | Any, label: str, total: int | None) -> None:
        super().__init__(log, label, total)
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            super().add(n)


class _BodyReader(io.RawIOBase):
    """A boto3 ``StreamingBody`` as a raw stream, whose read errors are the provider's errors."""

    def __init__(self, body: Any, translate: Any) -> None:
        self._body = body
        self._translate = translate

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except Exception as exc:
            raise self._translate(exc) from None
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
