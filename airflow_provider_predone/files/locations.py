"""
Where data lives: an input file (a local path or any ``ObjectStoragePath``) checked before it
is read, and an output written so that readers never see half of it.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.protocol.fields import sendable_name

#: Bytes copied at a time between files and streams.
COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class DataSource:
    """
    A readable input file: a local path or an ``ObjectStoragePath`` (``s3://``, ``gs://``, ...).

    :param field: the operator argument it came from, named in every error.
    """

    field: str
    location: Any  # pathlib.Path or airflow.sdk.ObjectStoragePath
    name: str
    size: int

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        with self.location.open("rb") as stream:
            yield stream

    def __str__(self) -> str:
        return str(self.location)


def resolve(field: str, data: Any, *, extensions: tuple[str, ...] = (".csv",)) -> DataSource:
    """
    Check that ``data`` names a non-empty, readable file with an allowed extension.

    :param field: the argument name, for error messages.
    :param data: a local path (``str``/``Path``), a URL with a scheme (``s3://...``,
        ``file:///...``) or an ``ObjectStoragePath``.
    :raises InvalidInputError: naming ``field``, the location and what is allowed.
    """
    if data is None or (isinstance(data, str) and not data.strip()):
        raise InvalidInputError(f"{field} is required: a local path or an object storage URL")
    location = _location(field, data)
    name = PurePosixPath(str(getattr(location, "name", "") or "")).name
    sendable_name(name, f"{field}: the file name")  # it is announced to the service and logged
    if extensions and not name.lower().endswith(extensions):
        raise InvalidInputError(f"{field}: {data!s} must be a file ending in {' or '.join(extensions)} (got {name!r})")
    try:
        info = location.stat()
    except FileNotFoundError:
        raise InvalidInputError(f"{field}: {data!s} does not exist") from None
    except PermissionError:
        raise InvalidInputError(f"{field}: {data!s} cannot be read (permission denied)") from None
    except OSError as exc:
        raise InvalidInputError(f"{field}: {data!s} cannot be read ({exc})") from None
    except ValueError as exc:  # an object storage scheme nobody registered, when resolved lazily
        storage = getattr(location, "protocol", None) is not None  # ObjectStoragePath; not a local Path
        what = "is not a usable object storage URL" if storage else "cannot be read"
        raise InvalidInputError(f"{field}: {data!r} {what} ({exc})") from None
    mode = getattr(info, "st_mode", None)
    if mode is not None and stat.S_ISDIR(mode):
        raise InvalidInputError(f"{field}: {data!s} is a directory, not a file")
    size = int(getattr(info, "st_size", 0) or 0)
    if size == 0:
        raise InvalidInputError(f"{field}: {data!s} is empty")
    source = DataSource(field=field, location=location, name=name, size=size)
    try:
        with source.open() as stream:
            stream.read(1)
    except PermissionError:
        raise InvalidInputError(f"{field}: {data!s} cannot be read (permission denied)") from None
    except OSError as exc:
        raise InvalidInputError(f"{field}: {data!s} cannot be read ({exc})") from None
    return source


def _location(field: str, data: Any) -> Any:
    if isinstance(data, Path):
        return data
    text = str(data)
    if "://" in text and not text.startswith("file://"):
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        try:
            return data if isinstance(data, ObjectStoragePath) else ObjectStoragePath(text)
        except Exception as exc:
            raise InvalidInputError(f"{field}: {text!r} is not a usable object storage URL ({exc})") from None
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text).expanduser()


def output_location(field: str, data: Any) -> Any:
    """
    A place to write a result file: a local path (its folder is created) or object storage.

    :raises InvalidInputError: if it is missing, a directory, or its folder cannot be created.
    """
    if data is None or (isinstance(data, str) and not data.strip()):
        raise InvalidInputError(f"{field} is required: a local path or an object storage URL")
    location = _location(field, data)
    if isinstance(location, Path):
        if location.is_dir():
            raise InvalidInputError(f"{field}: {data!s} is a directory; give a file path")
        try:
            location.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"{field}: cannot create the folder of {data!s} ({exc})") from None
    return location


@contextmanager
def open_for_writing(location: Any) -> Iterator[IO[bytes]]:
    """
    Write a result so that readers never see half of it: through a ``.part`` file (or object)
    beside it, moved into place at the end and removed on failure, which leaves whatever was
    there before as it was. (An object store's stream alone writes what it has when it closes,
    failure or not; its move is a copy on the server.)
    """
    partial = location.with_name(f".{location.name}.part")
    try:
        with partial.open("wb") as stream:
            yield stream
        if isinstance(location, Path):
            partial.replace(location)
        else:
            location.fs.mv(partial.path, location.path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
