"""
Local side of the data: input files (local paths or any ``ObjectStoragePath``), their checks
before anything is uploaded, the vendor's column-info CSV, the retraining zip, and safe
extraction of result archives.

Nothing here reads a whole file into memory: headers are read from the first line, archives
are written and extracted in chunks, and the pass over a whole file before its upload (to
transcode it to UTF-8 and check the positive value) streams.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import logging
import lzma
import math
import os
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from airflow_provider_predone.exceptions import InvalidInputError, UnsafeArchiveError
from airflow_provider_predone.protocol.fields import sendable_name

COPY_CHUNK = 1024 * 1024
COLUMN_TYPES = ("string", "float", "date")
_HEADER_LIMIT = 1024 * 1024
#: The codec of UTF-8 input: a byte-order mark (Excel's "CSV UTF-8") is accepted and skipped.
UTF8 = "utf-8-sig"
#: Excel's "Shift-JIS" CSVs are Microsoft's cp932 (Windows-31J), a superset of JIS Shift_JIS
#: (with ①, ㈱, NEC and IBM extensions): these labels decode as cp932, as browsers do.
_CP932_LABELS = frozenset({"shift_jis", "shift-jis", "shiftjis", "sjis", "s_jis", "s-jis", "windows-31j", "x-sjis"})
#: A record longer than this is not a CSV line we can scan with constant memory.
_LINE_LIMIT = 16 * 1024 * 1024
#: Characters split into lines at a time while scanning (the lines of one chunk are held at once).
_SCAN_CHUNK = 256 * 1024
#: How many distinct values of the target column an error message quotes.
_VALUES_SHOWN = 5

log = logging.getLogger(__name__)


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


def check_encoding(encoding: Any, field: str = "encoding") -> str:
    """
    The Python codec to read a CSV with, from what the user passed as ``encoding``.

    ``utf-8`` (the default) also accepts a byte-order mark; Shift-JIS labels mean cp932 (what
    Excel writes); any other Python text codec name is accepted as it is.

    :raises InvalidInputError: naming ``field``, for an unknown or non-text codec.
    """
    allowed = "e.g. 'utf-8' (the default), 'utf-8-sig', 'cp932' (Shift-JIS, as Japanese Excel saves CSV) or 'euc_jp'"
    if not isinstance(encoding, str) or not encoding.strip():
        raise InvalidInputError(f"{field} must be the name of a text encoding ({allowed}), got {encoding!r}")
    label = encoding.strip().lower()
    if label in _CP932_LABELS:
        return "cp932"
    try:
        info = codecs.lookup(label)
    except LookupError:
        raise InvalidInputError(
            f"{field}: unknown encoding {encoding!r}; give a Python codec name, {allowed}"
        ) from None
    if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zlib...: bytes-to-bytes codecs
        raise InvalidInputError(f"{field}: {encoding!r} is not a text encoding; {allowed}")
    return UTF8 if info.name in ("utf-8", UTF8) else info.name


def read_csv_header(source: DataSource, encoding: str = UTF8) -> list[str]:
    """
    The column names of a CSV, from its first record only.

    :param encoding: a codec from :func:`check_encoding` (default: UTF-8, with or without BOM).
    :raises InvalidInputError: if the file is not CSV text in ``encoding``, has no data row after
        the header, or repeats or omits column names.
    """
    with source.open() as stream:
        head = stream.read(_HEADER_LIMIT)
    text = _decode_prefix(source, head, encoding)
    if "\x00" in text:
        raise InvalidInputError(f"{source.field}: {source} is not a CSV text file (it contains NUL bytes)")
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


def _decode_prefix(source: DataSource, head: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        # final=False: a multi-byte character cut at the end of the prefix is not an error.
        return decoder.decode(head, final=len(head) < _HEADER_LIMIT)
    except UnicodeDecodeError as exc:
        if b"\x00" in head:
            raise InvalidInputError(
                f"{source.field}: {source} is not a CSV text file (it contains NUL bytes)"
            ) from None
        raise InvalidInputError(_not_encoded(source, encoding, f"byte {exc.start}", _guess(head))) from None


def _guess(head: bytes) -> str | None:
    """cp932 when undecodable UTF-8 reads as Japanese Excel's Shift-JIS (the usual case), else ``None``."""
    try:
        codecs.getincrementaldecoder("cp932")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return "cp932"


def _not_encoded(source: DataSource, encoding: str, where: str, guess: str | None = None) -> str:
    if encoding == UTF8 and guess:
        return (
            f"{source.field}: {source} is not UTF-8 text ({where}) but reads as {guess} (Shift-JIS, as "
            f"Japanese Excel saves CSV): pass encoding={guess!r} to the operator, or save the file as UTF-8"
        )
    if encoding == UTF8:
        return (
            f"{source.field}: {source} is not UTF-8 text ({where}): save it as UTF-8 or pass the operator "
            "encoding= with its encoding (e.g. encoding='cp932' for Shift-JIS CSVs from Japanese Excel)"
        )
    return f"{source.field}: {source} is not {encoding} text ({where}); check the operator's encoding= argument"


def check_columns(source: DataSource, header: list[str], required: Mapping[str, str]) -> None:
    """``required``: what names each column (e.g. ``config['tc']``) → column that must exist."""
    missing = {what: column for what, column in required.items() if column not in header}
    if missing:
        detail = ", ".join(f"{what}={column!r}" for what, column in missing.items())
        raise InvalidInputError(f"{source.field}: {source} has no column for {detail}; its columns are {header}")


def prepare_upload(
    source: DataSource,
    scratch: Path | None,
    *,
    encoding: str = UTF8,
    target: str | None = None,
    positive: str | None = None,
) -> DataSource:
    """
    The file to upload for ``source``, after one streaming pass over it where one is needed.

    The vendor reads UTF-8, so a file in another encoding is transcoded into ``scratch``
    while it is read (a real file: the upload needs its exact size up front, may be retried,
    and must not read object storage twice). With ``target`` and ``positive`` (a binary
    ``tv``), the pass also checks that the positive value occurs in the target column, so a
    training that could only fail is never started. A UTF-8 file with nothing to check is
    returned as it is, unread.

    :param scratch: a folder of the caller's, for the transcoded file (one per input file);
        ``None`` only checks the positive value, writing nothing.
    :param encoding: a codec from :func:`check_encoding`.
    :raises InvalidInputError: if the file is not text in ``encoding``, is not CSV, or never
        holds ``positive`` in ``target`` (the error quotes some values it does hold).
    """
    transcode = encoding != UTF8 and scratch is not None
    values = _TargetValues(target, positive) if target is not None and positive is not None else None
    if not transcode and values is None:
        return source
    destination = (scratch or Path()) / source.name
    lines = 0
    with ExitStack() as stack:
        raw = stack.enter_context(source.open())
        out = None
        if transcode:
            destination.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(destination.open("wb"))
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")  # an incremental decoder, read in chunks
        stack.callback(text.detach)  # ``raw`` is closed by its own context manager
        reader = None
        try:
            if values is not None:
                reader = csv.reader(_lines(source, text, out))
                values.scan(reader)  # stops once found: the rest (if transcoded) is copied unparsed
                lines = reader.line_num
                values.check(source)
            if out is not None:
                while chunk := text.read(COPY_CHUNK):
                    out.write(chunk.encode())
                    lines += chunk.count("\n")
        except UnicodeDecodeError:
            line = lines or (reader.line_num if reader is not None else 0)
            raise InvalidInputError(_not_encoded(source, encoding, f"after line {line}")) from None
        except csv.Error as exc:
            raise InvalidInputError(f"{source.field}: {source} is not a readable CSV file ({exc})") from None
    if not transcode:
        return source
    return DataSource(field=source.field, location=destination, name=source.name, size=destination.stat().st_size)


def _lines(source: DataSource, text: IO[str], out: IO[bytes] | None) -> Iterator[str]:
    """
    The lines of ``text``, read a chunk at a time (each chunk also written to ``out`` as UTF-8
    when given, whole, so the rest of the file can be copied without splitting it).
    """
    rest = ""
    while chunk := text.read(_SCAN_CHUNK):
        if out is not None:
            out.write(chunk.encode())
        lines = (rest + chunk).split("\n")
        rest = lines.pop()
        if len(rest) > _LINE_LIMIT:
            raise InvalidInputError(f"{source.field}: {source} has a line longer than {_LINE_LIMIT} characters")
        for line in lines:
            yield line + "\n"
    if rest:
        yield rest


class _TargetValues:
    """
    Looks for the positive value in the target column, keeping only a few other values to
    quote. Labels match as the service compares them: the same text, or the same number
    (``1`` and ``1.0``).
    """

    def __init__(self, target: str, positive: str) -> None:
        self.target = target
        self.positive = positive.strip()
        self.found = False
        self.has_target = False
        self.others: list[str] = []

    def scan(self, records: Iterator[list[str]]) -> bool:
        """Read records (the header first) until the positive value shows; ``True`` if it did."""
        header = [name.strip() for name in next(records, [])]
        if self.target not in header:
            return False  # the header check reports a missing column
        self.has_target = True
        index, positive, others = header.index(self.target), self.positive, self.others
        # A target column holds few distinct labels: each is compared once, then only looked up.
        differ: set[str] = set()
        for record in records:
            if len(record) <= index or (cell := record[index]) in differ:
                continue
            label = cell.strip()
            if label and _same_label(label, positive):
                self.found = True
                return True
            if len(differ) < 10_000:
                differ.add(cell)
            if label and len(others) < _VALUES_SHOWN and label not in others:
                others.append(label)
        return False

    def check(self, source: DataSource) -> None:
        if self.has_target and not self.found:
            seen = f"values that do occur include {self.others}" if self.others else "the column is empty"
            raise InvalidInputError(
                f"config: tv={self.positive!r} (the positive value) never occurs in the target column "
                f"tc={self.target!r} of {source.field} {source}; {seen}"
            )


def _same_label(cell: str, positive: str) -> bool:
    if cell == positive:
        return True
    try:
        return float(cell) == float(positive)
    except ValueError:
        return False


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


@dataclass(frozen=True)
class ArchiveLimits:
    """
    How much a result archive may hold before it is refused as a zip bomb (see
    :func:`safe_extract`); the operators that open results take one as ``result_limits``.

    :param max_members: entries (files and folders) in one archive.
    :param max_total_bytes: bytes of all members together, counted as they are decompressed.
    :param max_ratio: how many times its compressed size one member may expand to, once it is
        larger than :data:`RATIO_GRACE_BYTES` (``math.inf`` turns the check off).
    :param max_json_bytes: the largest JSON member parsed (the metrics search and
        ``model_summary.json``); a larger one stays on disk, unread.
    """

    max_members: int = 10_000
    max_total_bytes: int = 1024**3
    max_ratio: float = 100.0
    max_json_bytes: int = 8 * 1024**2

    def __post_init__(self) -> None:
        for name in ("max_members", "max_total_bytes", "max_json_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"result_limits: {name} must be a positive integer, got {value!r}")
        ratio = self.max_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or math.isnan(ratio) or ratio < 1:
            raise InvalidInputError(f"result_limits: max_ratio must be a number >= 1, got {ratio!r}")


#: The limits used when an operator is given no ``result_limits``.
DEFAULT_LIMITS = ArchiveLimits()
#: A member may expand past ``max_ratio`` up to this size: small files (a JSON summary of a
#: few zeros) compress very well, and cannot exhaust anything.
RATIO_GRACE_BYTES = 1024**2
_NAME_MAX = 255  # bytes in one path component (Linux, macOS)
_PATH_MAX = 4096 - 64  # bytes in a whole path, with room for the staging folder's longer name
#: What reading a damaged member raises: CRC and header errors, truncated or corrupt streams,
#: an unsupported method or an encrypted member; OSError also covers a name the disk refuses.
_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)


def archive_limits(value: Any) -> ArchiveLimits:
    """``value`` (an operator's ``result_limits``) checked, ``None`` meaning :data:`DEFAULT_LIMITS`."""
    if value is None:
        return DEFAULT_LIMITS
    if not isinstance(value, ArchiveLimits):
        raise InvalidInputError(f"result_limits must be an ArchiveLimits(...) or None, got {value!r}")
    return value


def result_folder(result_dir: str | os.PathLike[str], job_id: Any, field: str) -> Path:
    """
    ``<result_dir>/<job_id>``, the folder a result is kept in, once it is known to resolve
    strictly under ``result_dir``: the id comes from the vendor's answer (or a task's XCom),
    and must not pick another folder of the worker (``../dags``, ``/abs``, ``..``, ``.``, empty).

    :param field: what the id is called (``external_process_id``, ``retrain_job_id``), for the error.
    :raises UnsafeArchiveError: naming ``field``; nothing has been downloaded then.
    """
    base = Path(result_dir).expanduser()
    text = "" if job_id is None else str(job_id)
    refusal = f"{field} {job_id!r} cannot name a folder under result_dir {str(base)!r}"
    try:
        root, target = base.resolve(), (base / text).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop
        raise UnsafeArchiveError(f"{refusal} ({exc}); nothing was downloaded") from None
    if not text.strip() or root not in target.parents:
        raise UnsafeArchiveError(f"{refusal} (it resolves to {str(target)!r}); nothing was downloaded")
    return base / text


def safe_extract(
    archive_path: Path,
    destination: Path,
    *,
    limits: ArchiveLimits | None = None,
    max_bytes: int | None = None,
) -> list[str]:
    """
    Extract a result zip into ``destination``, refusing anything that could escape it or
    exhaust the disk.

    Every member is checked before anything is written: no absolute paths, drive letters,
    ``..`` components, symlinks or special files, no duplicates, no member under a file
    member, names the disk can hold, at most ``limits.max_members`` members, and declared
    sizes within ``limits`` (total, and ratio to the compressed size). While extracting, the
    bytes actually decompressed are counted against the same limits. Members are written
    into a staging folder beside ``destination`` and moved into it at the end, so a failure
    leaves ``destination`` (and any file it held before) as it was.

    :param limits: :data:`DEFAULT_LIMITS` when not given.
    :param max_bytes: replaces ``limits.max_total_bytes``.
    :raises UnsafeArchiveError: naming the offending member; nothing is extracted then.
    :return: the extracted member names (files only).
    """
    limits = archive_limits(limits)
    if max_bytes is not None:
        limits = dataclasses.replace(limits, max_total_bytes=max_bytes)
    name = archive_path.name
    declared = _declared_members(archive_path)
    if declared is not None and declared > limits.max_members:  # refused before its directory is parsed
        raise UnsafeArchiveError(
            f"{name}: {declared} members, more than the {limits.max_members} allowed "
            "(result_limits max_members); nothing was extracted"
        )
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UnsafeArchiveError(f"{name} is not a readable zip archive ({exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise UnsafeArchiveError(
                f"{name}: {len(members)} members, more than the {limits.max_members} allowed "
                "(result_limits max_members); nothing was extracted"
            )
        plan = _plan_extraction(name, members, destination, limits)
        created = [folder for folder in (destination.parent, *destination.parent.parents) if not folder.exists()]
        staging: Path | None = None
        moved: list[Path] = []
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=destination.parent))
            written = _write_members(archive, name, plan, staging, limits)
            _move_into(name, plan, staging, destination, moved)
        except BaseException:
            for path in reversed(moved):  # only what did not exist before
                with suppress(OSError):
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()
                    else:
                        path.unlink()
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            for folder in created:  # innermost first; a folder someone else wrote to meanwhile stays
                with suppress(OSError):
                    folder.rmdir()
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return written


_END_RECORD = struct.Struct("<4s4H2LH")  # the end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


def _declared_members(path: Path) -> int | None:
    """
    The member count an archive's end record declares, read without parsing its central
    directory (which takes seconds and memory for 100,000 entries); ``None`` if not found.
    The count can lie: the members parsed are counted again.
    """
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            start = max(0, size - _END_RECORD.size - 0xFFFF)  # the record, then a comment of up to 64 KiB
            stream.seek(start)
            tail = stream.read()
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) - at < _END_RECORD.size:
                return None
            count: int = _END_RECORD.unpack_from(tail, at)[4]
            if count != 0xFFFF or start + at < _ZIP64_LOCATOR.size:
                return count
            stream.seek(start + at - _ZIP64_LOCATOR.size)  # zip64: the locator precedes the end record
            signature, _, offset, _ = _ZIP64_LOCATOR.unpack(stream.read(_ZIP64_LOCATOR.size))
            if signature != b"PK\x06\x07":
                return count
            stream.seek(offset)
            record = stream.read(_ZIP64_END_RECORD.size)
            if len(record) < _ZIP64_END_RECORD.size or record[:4] != b"PK\x06\x06":
                return count
            zip64_count: int = _ZIP64_END_RECORD.unpack(record)[7]
            return zip64_count
    except (OSError, struct.error):
        return None


def _plan_extraction(
    name: str, members: list[zipfile.ZipInfo], destination: Path, limits: ArchiveLimits
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    root = destination.resolve()
    seen: set[str] = set()
    file_keys: set[str] = set()
    folder_keys: set[str] = set()
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
            or "\x00" in filename
        ):
            raise UnsafeArchiveError(f"{name}: member {filename!r} has an unsafe path; nothing was extracted")
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded no type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{name}: member {filename!r} is a link or special file; nothing was extracted")
        target = root.joinpath(*parts)
        if len(os.fsencode(str(target))) > _PATH_MAX or any(len(os.fsencode(p)) > _NAME_MAX for p in parts):
            raise UnsafeArchiveError(
                f"{name}: member {filename!r} has a path too long for the disk; nothing was extracted"
            )
        resolved = target.resolve()
        if root != resolved and root not in resolved.parents:
            raise UnsafeArchiveError(f"{name}: member {filename!r} escapes the target folder")
        key = "/".join(parts).lower()
        if key in seen:
            raise UnsafeArchiveError(f"{name}: member {filename!r} appears twice")
        seen.add(key)
        # "a" then "a/b" (or the reverse): one name cannot be a file and a folder.
        prefixes = ["/".join(parts[:i]).lower() for i in range(1, len(parts))]
        clash = next((p for p in prefixes if p in file_keys), None) or (
            key if not info.is_dir() and key in folder_keys else None
        )
        if clash is not None:
            raise UnsafeArchiveError(
                f"{name}: member {filename!r} needs {clash!r} to be both a file and a folder; nothing was extracted"
            )
        (folder_keys if info.is_dir() else file_keys).add(key)
        folder_keys.update(prefixes)
        if _clashes_on_disk(target, root, info.is_dir()):
            raise UnsafeArchiveError(
                f"{name}: member {filename!r} would replace a folder with a file (or the reverse) already in "
                f"{str(destination)!r}; nothing was extracted"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{name}: members declare more than {limits.max_total_bytes} bytes in total "
                "(result_limits max_total_bytes); nothing was extracted"
            )
        if info.file_size > max(RATIO_GRACE_BYTES, limits.max_ratio * info.compress_size):
            raise UnsafeArchiveError(
                f"{name}: member {filename!r} declares {info.file_size} bytes from {info.compress_size} compressed, "
                f"more than {limits.max_ratio:g} times (result_limits max_ratio); nothing was extracted"
            )
        plan.append((info, parts))
    return plan


def _clashes_on_disk(target: Path, root: Path, is_dir: bool) -> bool:
    """Whether a file of the destination sits where a folder is needed, or a folder where a file goes."""
    if not is_dir and target.is_dir():
        return True
    if is_dir and target.exists() and not target.is_dir():
        return True
    return any(folder.exists() and not folder.is_dir() for folder in target.parents if root in folder.parents)


def _write_members(
    archive: zipfile.ZipFile,
    name: str,
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
    staging: Path,
    limits: ArchiveLimits,
) -> list[str]:
    """Decompress the planned members into ``staging``, counting the bytes that come out."""
    total = 0
    written: list[str] = []
    for info, parts in plan:
        target = staging.joinpath(*parts)
        ceiling = max(RATIO_GRACE_BYTES, limits.max_ratio * info.compress_size)
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("xb") as out:
                size = 0
                while chunk := source.read(COPY_CHUNK):
                    size += len(chunk)
                    total += len(chunk)
                    if size > info.file_size:
                        raise UnsafeArchiveError(f"{name}: member {info.filename!r} is larger than declared")
                    if size > ceiling:
                        raise UnsafeArchiveError(
                            f"{name}: member {info.filename!r} expands more than {limits.max_ratio:g} times "
                            "(result_limits max_ratio)"
                        )
                    if total > limits.max_total_bytes:
                        raise UnsafeArchiveError(
                            f"{name}: members expand to more than {limits.max_total_bytes} bytes in total "
                            "(result_limits max_total_bytes)"
                        )
                    out.write(chunk)
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(f"{exc}; nothing was kept") from None
        except _MEMBER_ERRORS as exc:
            raise UnsafeArchiveError(
                f"{name}: member {info.filename!r} cannot be extracted ({type(exc).__name__}: {exc}); nothing was kept"
            ) from None
        written.append(info.filename)
    return written


def _move_into(
    name: str,
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
    staging: Path,
    destination: Path,
    moved: list[Path],
) -> None:
    """
    Put the extracted members in place: the staging folder itself when ``destination`` is new
    (one rename), else member by member, replacing files of the same name; every path that did
    not exist before is appended to ``moved``, so a failure can take it back.
    """
    if not destination.exists():
        try:
            staging.rename(destination)
        except OSError as exc:
            raise UnsafeArchiveError(f"{name}: cannot move the result into {str(destination)!r} ({exc})") from None
        moved.append(destination)
        return
    for info, parts in plan:
        target = destination.joinpath(*parts)
        try:
            needed = [*reversed(target.parents), target] if info.is_dir() else list(reversed(target.parents))
            for folder in needed:
                if destination in folder.parents and not folder.exists():
                    folder.mkdir()
                    moved.append(folder)
            if not info.is_dir():
                existed = target.exists()
                os.replace(staging.joinpath(*parts), target)
                if not existed:
                    moved.append(target)
        except OSError as exc:
            raise UnsafeArchiveError(
                f"{name}: member {info.filename!r} cannot be moved into {str(destination)!r} ({exc}); nothing was kept"
            ) from None


class MemberTooLargeError(ValueError):
    """An extracted member is larger than the limit on what is parsed; it was not read."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(
            f"{path.name} holds {size} bytes, more than the {limit} parsed (result_limits max_json_bytes); not read"
        )
        self.path = path


def load_json_member(path: Path, max_bytes: int = DEFAULT_LIMITS.max_json_bytes) -> Any:
    """
    Parse one extracted JSON member (UTF-8, with or without BOM), reading no more than
    ``max_bytes`` of it.

    :raises MemberTooLargeError: when the member is larger than ``max_bytes`` (it is not read).
    :raises ValueError: when it is not JSON, or nested too deeply to parse.
    :raises OSError: when it cannot be read.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise MemberTooLargeError(path, size, max_bytes)
    with path.open("rb") as stream:
        data = stream.read(size + 1)  # not max_bytes + 1: read(n) allocates n bytes first
    if len(data) > max_bytes:
        raise MemberTooLargeError(path, len(data), max_bytes)
    try:
        return json.loads(data.decode("utf-8-sig"))
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply to parse") from None


def read_json_member(
    directory: Path, name: str, max_bytes: int = DEFAULT_LIMITS.max_json_bytes
) -> dict[str, Any] | None:
    """
    A JSON object found anywhere in an extracted result (``None`` if absent or unreadable);
    members larger than ``max_bytes`` are skipped unread, with a warning.
    """
    for candidate in sorted(directory.rglob(name)):
        try:
            value = load_json_member(candidate, max_bytes)
        except MemberTooLargeError as exc:
            log.warning("%s", exc)
            continue
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
