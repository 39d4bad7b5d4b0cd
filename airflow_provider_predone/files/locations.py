"""
Where data lives: an input file checked before it is read, and an output written so that
readers never see half of it, on the local disk or in any object storage.

One code path serves both: a location (a local ``Path`` or an ``ObjectStoragePath``) is reached
through its fsspec filesystem and the path on it (:func:`filesystem`): fsspec's own
``LocalFileSystem`` for a local path, the filesystem Airflow attached (with its connection)
for object storage. Files are opened through that filesystem, not through
``ObjectStoragePath.open``: its lineage-tracking wrapper reported every file read or written
here as a hook-level lineage asset (the header read for an output's lineage facets made the
output an input), and made reading line by line many times slower; each operator reports its
own lineage instead (:mod:`airflow_provider_predone.lineage`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.protocol.fields import sendable_name

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: Bytes copied at a time between files and streams.
COPY_CHUNK = 1024 * 1024


def filesystem(location: Any) -> tuple[AbstractFileSystem, str]:
    """
    The fsspec filesystem holding ``location`` and its path there.

    :param location: a local ``Path`` (fsspec's local filesystem) or an ``ObjectStoragePath``
        (the filesystem Airflow attached for its scheme and connection).
    :raises ValueError: for an object storage scheme no filesystem is registered for.
    """
    if not in_object_storage(location):
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), str(location)
    return location.fs, str(location.path)


def in_object_storage(location: Any) -> bool:
    """Whether ``location`` is an ``ObjectStoragePath`` (else a local path)."""
    # An ObjectStoragePath knows its filesystem. Not isinstance(location, Path): on Airflow 3.0
    # (universal_pathlib 0.2) an ObjectStoragePath is a pathlib.Path too.
    return hasattr(type(location), "fs")


def _has_folders(fs: AbstractFileSystem) -> bool:
    # A local disk's folders must exist before a file is written in them; an object store has
    # none to make (and s3fs's makedirs of a bucket's root would create the bucket).
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return "file" in protocols or "local" in protocols


@contextmanager
def open_for_reading(location: Any) -> Iterator[IO[bytes]]:
    """A binary stream of the file at ``location`` (local or object storage), closed on exit."""
    fs, path = filesystem(location)
    with fs.open(path, "rb") as stream, _direct(stream, "rb") as direct:
        yield direct


@contextmanager
def _direct(stream: IO[bytes], mode: str) -> Iterator[IO[bytes]]:
    """
    ``stream``, or for a file with an OS descriptor (a local disk's) Python's own buffered file
    on that descriptor: fsspec's local file object adds a Python call to every ``write`` and
    answers ``closed`` in Python, which TextIOWrapper asks for every line (CSV parsing ran at
    half the speed, row-by-row writing at a third).
    """
    try:
        descriptor = stream.fileno()
    except (OSError, AttributeError, ValueError):  # io.UnsupportedOperation is an OSError
        yield stream
        return
    with open(descriptor, mode, closefd=False) as direct:  # closed (flushed) before ``stream``
        yield direct


@dataclass(frozen=True)
class DataSource:
    """
    A readable input file: a local path or an ``ObjectStoragePath`` (``s3://``, ``gs://``, ...).

    :param field: the operator argument it came from, named in every error.
    :param location: where it is, as the user named it (``Path`` or ``ObjectStoragePath``):
        errors, logs and lineage name it.
    """

    field: str
    location: Any  # pathlib.Path or airflow.sdk.ObjectStoragePath
    name: str
    size: int

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        with open_for_reading(self.location) as stream:
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
        fs, path = filesystem(location)
        info = fs.info(path)
    except FileNotFoundError:
        raise InvalidInputError(f"{field}: {data!s} does not exist") from None
    except PermissionError:
        raise InvalidInputError(f"{field}: {data!s} cannot be read (permission denied)") from None
    except OSError as exc:
        raise InvalidInputError(f"{field}: {data!s} cannot be read ({exc})") from None
    except ValueError as exc:  # an object storage scheme nobody registered, when resolved lazily
        what = "is not a usable object storage URL" if in_object_storage(location) else "cannot be read"
        raise InvalidInputError(f"{field}: {data!r} {what} ({exc})") from None
    if info.get("type") == "directory":
        raise InvalidInputError(f"{field}: {data!s} is a directory, not a file")
    size = int(info.get("size") or 0)
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

    :raises InvalidInputError: if it is missing, a local directory, or its folder cannot be created.
    """
    if data is None or (isinstance(data, str) and not data.strip()):
        raise InvalidInputError(f"{field} is required: a local path or an object storage URL")
    location = _location(field, data)
    try:
        fs, path = filesystem(location)
    except ValueError as exc:
        raise InvalidInputError(f"{field}: {data!r} is not a usable object storage URL ({exc})") from None
    # Checked where folders exist only: on object storage a check would be a request, and one a
    # writer's credentials may not be allowed to make (listing).
    if _has_folders(fs):
        if fs.isdir(path):
            raise InvalidInputError(f"{field}: {data!s} is a directory; give a file path")
        try:
            fs.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"{field}: cannot create the folder of {data!s} ({exc})") from None
    return location


@contextmanager
def open_for_writing(location: Any) -> Iterator[IO[bytes]]:
    """
    Write a result so that readers never see half of it: through a ``.part`` file (or object)
    beside it, moved into place at the end and removed on failure, which leaves whatever was
    there before as it was. (An object store's stream alone writes what it has when it closes,
    failure or not; its move is a copy on the server. On a local disk the move is a rename.)
    """
    fs, path = filesystem(location)
    partial = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.part")
    try:
        with fs.open(partial, "wb") as stream, _direct(stream, "wb") as direct:
            yield direct
        fs.mv(partial, path)
    except BaseException:
        with suppress(OSError):  # nothing written yet, or already gone: the failure itself is what counts
            fs.rm_file(partial)
        raise
