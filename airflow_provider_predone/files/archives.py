"""
Zip archives: the retraining archive written for the vendor, and the result archives read
back from it, extracted without trusting anything they say (paths, sizes, counts) and whose
JSON members are parsed within a size limit.
"""

from __future__ import annotations

import dataclasses
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
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_predone.exceptions import InvalidInputError, UnsafeArchiveError
from airflow_provider_predone.files.locations import COPY_CHUNK, DataSource

log = logging.getLogger(__name__)


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
    :param max_json_bytes: the largest JSON member parsed (the search for metrics and the
        archive's summary); a larger one stays on disk, unread.
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
