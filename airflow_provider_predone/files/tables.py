"""
The CSV files the user gives, checked before anything is uploaded: their encoding, header and
columns, a binary target's positive value, and the vendor's column-info CSV.

Nothing here reads a whole file into memory: the header comes from the first record, and the
pass over a whole file before its upload (to transcode it to UTF-8 and look for the positive
value) streams.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.files.locations import COPY_CHUNK, DataSource, resolve

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
