"""
How the emulated AiTEMS reads a dataset's files: from the S3-compatible server given by
``--object-storage-endpoint`` (a local moto server in the tests and the demo, in place of NCP
Object Storage), signed with the emulator's AiTEMS keys, as NAVER's service reads the user's
bucket with the same API keys.

Written apart from the provider's own client (:mod:`airflow_provider_predone.hooks.object_storage`),
so a mistake there is not repeated on the service's side. Calls block: run them in the
emulator's executor (``Runtime.submit``). boto3 (the ``aitems`` extra) is imported on first use,
so the emulator runs without it until a dataset is read.
"""

from __future__ import annotations

import functools
from typing import Any

from .config import EmulatorConfig

#: Largest object read whole (the emulator checks a dataset file's rows in memory).
MAX_OBJECT_BYTES = 256 * 1024 * 1024
#: Most keys a listing collects (NCP pages hold at most 1,000; a prefix that names more is refused).
MAX_KEYS = 100_000
_REGION = "kr-standard"


class ObjectStorageReadError(Exception):
    """
    A dataset's file could not be read; the message says why, naming the bucket and key.

    :param code: ``NoSuchBucket``, ``NoSuchKey``, ``AccessDenied``, ``TooLarge``, ``NotConfigured``
        or the server's error code.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@functools.lru_cache(maxsize=8)
def _client(endpoint: str, access_key: str, secret_key: str) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ObjectStorageReadError(
            "the emulator reads AiTEMS datasets with boto3: pip install 'airflow-provider-predone[aitems]'",
            "NotConfigured",
        ) from None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=_REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def _s3(config: EmulatorConfig) -> Any:
    if not config.object_storage_endpoint:
        raise ObjectStorageReadError(
            "the emulator has no object storage to read datasets from: start it with --object-storage-endpoint URL",
            "NotConfigured",
        )
    return _client(config.object_storage_endpoint, config.aitems_access_key, config.aitems_secret_key)


def _failure(exc: Exception, bucket: str, key: str | None) -> ObjectStorageReadError:
    """A botocore error as a read error naming what was read."""
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
    if code in ("NoSuchBucket",) or (code == "404" and key is None):
        return ObjectStorageReadError(f"bucket {bucket!r} does not exist", "NoSuchBucket")
    if code in ("NoSuchKey", "404"):
        return ObjectStorageReadError(f"{where} does not exist", "NoSuchKey")
    if code in ("AccessDenied", "403", "SignatureDoesNotMatch", "InvalidAccessKeyId"):
        return ObjectStorageReadError(f"{where}: access denied ({code})", "AccessDenied")
    return ObjectStorageReadError(f"{where} could not be read ({code})", code)


def read_object(config: EmulatorConfig, bucket: str, key: str, max_bytes: int = MAX_OBJECT_BYTES) -> bytes:
    """
    The whole object ``key`` of ``bucket``.

    :param config: the emulator's settings (endpoint and AiTEMS keys).
    :param bucket: the dataset's bucket.
    :param key: the object's key.
    :param max_bytes: largest object read; a larger one is an error (code ``TooLarge``).
    :raises ObjectStorageReadError: the bucket or key is missing, access is refused, or the
        object is too large.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = _s3(config)
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc, bucket, key) from None
    body = answer["Body"]
    try:
        if int(answer.get("ContentLength") or 0) > max_bytes:
            raise ObjectStorageReadError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes", "TooLarge")
        data: bytes = body.read(max_bytes + 1)
    finally:
        body.close()
    if len(data) > max_bytes:
        raise ObjectStorageReadError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes", "TooLarge")
    return data


def list_keys(config: EmulatorConfig, bucket: str, prefix: str, max_keys: int = MAX_KEYS) -> list[str]:
    """
    The keys of ``bucket`` under ``prefix``, sorted, listed with ListObjects V1 (NCP has no V2).

    :param config: the emulator's settings (endpoint and AiTEMS keys).
    :param bucket: the dataset's bucket.
    :param prefix: a dataset's key, when it names a folder of files.
    :param max_keys: most keys collected; more is an error (code ``TooLarge``).
    :raises ObjectStorageReadError: the bucket is missing, access is refused, or too many keys.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = _s3(config)
    keys: list[str] = []
    marker = ""
    while True:
        try:
            page = s3.list_objects(Bucket=bucket, Prefix=prefix, Marker=marker)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, bucket, None) from None
        contents = page.get("Contents") or []
        keys += [item["Key"] for item in contents]
        if len(keys) > max_keys:
            raise ObjectStorageReadError(f"s3://{bucket}/{prefix} holds more than {max_keys} objects", "TooLarge")
        if not page.get("IsTruncated") or not contents:
            return sorted(keys)
        # V1 pages on: NextMarker when a delimiter was given, else the page's last key.
        marker = page.get("NextMarker") or contents[-1]["Key"]
