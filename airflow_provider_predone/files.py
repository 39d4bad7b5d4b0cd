"""
Local side of the data: input files (local paths or any ``ObjectStoragePath``), their checks
before anything is uploaded, the vendor's column-info CSV, the retraining zip, and safe
extraction of result archives.

Nothing here reads a whole file into memory: headers are read from the first line, archives
are written and extracted in chunks.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import shutil
import stat
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from airflow_provider_predone.exceptions import InvalidInputError, UnsafeArchiveError

COPY_CHUNK = 1024 * 1024
COLUMN_TYPES = ("string", "float", "date")
#: Largest result archive member / total we extract (a zip bomb guard; configurable per call).
MAX_EXTRACTED_BYTES = 10 * 1024**3
_HEADER_LIMIT = 1024 * 1024


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


def read_csv_header(source: DataSource) -> list[str]:
    """
    The column names of a CSV (UTF-8, with or without BOM), from its first record only.

    :raises InvalidInputError: if the file is not UTF-8 text CSV, has no data row after the
        header, or repeats or omits column names.
    """
    with source.open() as stream:
        head = stream.read(_HEADER_LIMIT)
    if b"\x00" in head:
        raise InvalidInputError(f"{source.field}: {source} is not a CSV text file (it contains NUL bytes)")
    text = _decode_prefix(source, head)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        first_row = next(reader, None)
    except (StopIteration, csv.Error) as exc:
        raise InvalidInputError(f"{source.field}: {source} is not a readable CSV file ({exc})") from None
    header = [name.strip() for name in header]
    if not any(header):
        raise InvalidInputError(f"{source.field}: {source} has an empty header row")
    if any(not name for name in header):
        raise InvalidInputError(f"{source.field}: {source} has an unnamed column in its header {header}")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InvalidInputError(f"{source.field}: {source} repeats column name(s) {duplicates}")
    if first_row is None or not any(cell.strip() for cell in first_row):
        raise InvalidInputError(f"{source.field}: {source} has a header but no data rows")
    if len(header) < 2:
        raise InvalidInputError(f"{source.field}: {source} has a single column {header}; is it comma-separated CSV?")
    return header


def _decode_prefix(source: DataSource, head: bytes) -> str:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        # final=False: a multi-byte character cut at the end of the prefix is not an error.
        return decoder.decode(head, final=len(head) < _HEADER_LIMIT)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{source.field}: {source} is not UTF-8 text (byte {exc.start}); save the CSV as UTF-8"
        ) from None


def check_columns(source: DataSource, header: list[str], required: Mapping[str, str]) -> None:
    """``required``: what names each column (e.g. ``config['tc']``) → column that must exist."""
    missing = {what: column for what, column in required.items() if column not in header}
    if missing:
        detail = ", ".join(f"{what}={column!r}" for what, column in missing.items())
        raise InvalidInputError(f"{source.field}: {source} has no column for {detail}; its columns are {header}")


def column_info_rows(column_info: Any, field: str = "column_info") -> list[tuple[str, str]] | DataSource:
    """
    Normalise ``column_info``: a mapping column → type becomes rows to write; a path stays a
    file to upload as it is (after the usual checks).

    :raises InvalidInputError: for an unknown type, naming the column and the allowed types.
    """
    if isinstance(column_info, Mapping):
        rows: list[tuple[str, str]] = []
        for column, kind in column_info.items():
            if not isinstance(column, str) or not column.strip():
                raise InvalidInputError(f"{field}: column names must be non-empty strings, got {column!r}")
            if kind not in COLUMN_TYPES:
                raise InvalidInputError(
                    f"{field}: column {column!r} has type {kind!r}; allowed types: {list(COLUMN_TYPES)}"
                )
            rows.append((column, kind))
        if not rows:
            raise InvalidInputError(f"{field}: the mapping is empty")
        return rows
    return resolve(field, column_info)


def write_column_info(rows: list[tuple[str, str]], destination: Path) -> Path:
    """The vendor's column-info CSV: header ``column_name,column_type``, UTF-8 with BOM."""
    with destination.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["column_name", "column_type"])
        writer.writerows(rows)
    return destination


def build_retrain_zip(train: DataSource, evaluation: DataSource, destination: Path) -> Path:
    """
    The vendor's retraining archive: ``train_src/<train file>`` and ``eval_src/<eval file>``,
    deflated, streamed member by member (neither file is held in memory).
    """
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for folder, source in (("train_src", train), ("eval_src", evaluation)):
            with (
                source.open() as stream,
                archive.open(f"{folder}/{source.name}", "w", force_zip64=True) as member,
            ):
                shutil.copyfileobj(stream, member, COPY_CHUNK)
    return destination


def safe_extract(archive_path: Path, destination: Path, *, max_bytes: int = MAX_EXTRACTED_BYTES) -> list[str]:
    """
    Extract a result zip into ``destination``, refusing anything that could escape it.

    Every member is checked before anything is written: no absolute paths, drive letters,
    ``..`` components, symlinks or special files, no duplicates, and the declared total size
    at most ``max_bytes`` (extraction also stops if actual bytes exceed the declaration).

    :raises UnsafeArchiveError: naming the offending member; nothing is extracted then.
    :return: the extracted member names (files only).
    """
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchiveError(f"{archive_path.name} is not a readable zip archive ({exc})") from None
    with archive:
        members = archive.infolist()
        plan = _plan_extraction(archive_path.name, members, destination, max_bytes)
        destination.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        for info, target in plan:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as out:
                copied = 0
                while chunk := source.read(COPY_CHUNK):
                    copied += len(chunk)
                    if copied > info.file_size:
                        raise UnsafeArchiveError(f"{archive_path.name}: {info.filename!r} is larger than declared")
                    out.write(chunk)
            written.append(info.filename)
    return written


def _plan_extraction(
    name: str, members: list[zipfile.ZipInfo], destination: Path, max_bytes: int
) -> list[tuple[zipfile.ZipInfo, Path]]:
    root = destination.resolve()
    seen: set[str] = set()
    total = 0
    plan = []
    for info in members:
        filename = info.filename
        parts = PurePosixPath(filename.replace("\\", "/")).parts
        if (
            not parts
            or filename.startswith(("/", "\\"))
            or (len(parts[0]) >= 2 and parts[0][1] == ":")
            or any(part in ("..", "") for part in parts)
        ):
            raise UnsafeArchiveError(f"{name}: member {filename!r} has an unsafe path; nothing was extracted")
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded no type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{name}: member {filename!r} is a link or special file; nothing was extracted")
        target = root.joinpath(*parts).resolve()
        if root != target and root not in target.parents:
            raise UnsafeArchiveError(f"{name}: member {filename!r} escapes the target folder")
        key = "/".join(parts).lower()
        if key in seen:
            raise UnsafeArchiveError(f"{name}: member {filename!r} appears twice")
        seen.add(key)
        total += info.file_size
        if total > max_bytes:
            raise UnsafeArchiveError(f"{name}: members declare more than {max_bytes} bytes in total")
        plan.append((info, target))
    return plan


def read_json_member(directory: Path, name: str) -> dict[str, Any] | None:
    """A JSON file found anywhere in an extracted result (``None`` if absent or unreadable)."""
    for candidate in sorted(directory.rglob(name)):
        try:
            value = json.loads(candidate.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            return value
    return None


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
    Write a result so that readers never see half of it: locally via a ``.part`` file renamed
    at the end (removed on failure); object storage writes the object when the stream closes.
    """
    if not isinstance(location, Path):
        with location.open("wb") as stream:
            yield stream
        return
    partial = location.with_name(f".{location.name}.part")
    try:
        with partial.open("wb") as stream:
            yield stream
        partial.replace(location)
    finally:
        partial.unlink(missing_ok=True)
