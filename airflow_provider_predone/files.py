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
import io
import json
import shutil
import stat
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from airflow_provider_predone.exceptions import InvalidInputError, UnsafeArchiveError
from airflow_provider_predone.protocol.fields import sendable_name

COPY_CHUNK = 1024 * 1024
COLUMN_TYPES = ("string", "float", "date")
#: Largest result archive member / total we extract (a zip bomb guard; configurable per call).
MAX_EXTRACTED_BYTES = 10 * 1024**3
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
