"""
Result archives that would exhaust the disk, memory or time of a worker, or break extraction
half-way, and job ids that would pick the extraction folder (issue 22, points 4 and 1).

Over real HTTP: the crafted server of :mod:`test_hostile_responses` serves each archive, and a
Train or Retrain operator opens it as it opens a finished job's result (download, extraction,
metrics, summary). Every refusal is the typed :class:`UnsafeArchiveError` naming the member or
the field, and leaves the result folder as it was before.
"""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from helpers import aitems_connection, predone_connection
from test_hostile_responses import SIGNATURE, HostileServer, every_path, zip_of

from airflow_provider_predone.exceptions import InvalidInputError, UnsafeArchiveError
from airflow_provider_predone.hooks.predone import API_KEYS
from airflow_provider_predone.operators.predone import (
    ArchiveLimits,
    PredictionOneRetrainOperator,
    PredictionOneSwitchModelOperator,
    PredictionOneTrainOperator,
)

MiB = 1024**2


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    """The crafted server, with the default connection pointing at it (one quick retry)."""
    server = HostileServer()
    for running in server.serve():
        quick = {"max_retries": 1, "retry_wait_seconds": 0.01, "retry_max_wait_seconds": 0.05, "timeout": 10}
        monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(running.url, **quick))
        monkeypatch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(running.url, **quick))
        API_KEYS.clear()
        yield running
        API_KEYS.clear()


def serve(hostile: HostileServer, name: str, body: bytes) -> list[int]:
    """
    Serve ``body`` as ``/files/<name>``, 256 KiB at a time (so the server holds no second copy
    a test measuring memory would count); the list returned grows by one per download.
    """
    downloads: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        downloads.append(1)
        response = web.StreamResponse(headers={"Content-Type": "application/zip", "Content-Length": str(len(body))})
        await response.prepare(request)
        view = memoryview(body)
        for start in range(0, len(body), 256 * 1024):
            await response.write(view[start : start + 256 * 1024])
        await response.write_eof()
        return response

    hostile.routes[f"/files/{name}"] = handler
    return downloads


def train(**kwargs: object) -> PredictionOneTrainOperator:
    return PredictionOneTrainOperator(task_id="t", train_data="x.csv", model_name="m", config={}, **kwargs)


def written_bytes() -> int:
    """Bytes this process has passed to write() so far (Linux ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def raw_zip(name: str, data: bytes, *, method: int, crc: int, size: int) -> bytes:
    """
    A one-member zip around compressed ``data`` as given, declaring ``crc`` and ``size``:
    for archives :mod:`zipfile` will not write (a precomputed bomb, a cut member).
    """
    encoded = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 33, crc, len(data), size, len(encoded), 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 33, crc, len(data), size, len(encoded), 0, 0, 0, 0, 0, 0
    )
    offset = len(local) + len(encoded) + len(data)
    directory = central + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), offset, 0)
    return local + encoded + data + directory + end


def gigabyte_of_zeros() -> bytes:
    """1 GiB of zeros deflated to about 1 MB (deflate's best ratio), built without compressing 1 GiB."""
    zeros = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressor.compress(zeros)
    compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)  # the same bytes for every MiB
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(zeros, crc)
    data = block * 1024 + compressor.flush()
    return raw_zip("zeros.bin", data, method=zipfile.ZIP_DEFLATED, crc=crc, size=1024 * MiB)


# --- disk, memory and time ------------------------------------------------------------------------


def test_a_one_megabyte_download_expanding_to_a_gigabyte_is_refused_unwritten(
    hostile: HostileServer, tmp_path: Path
) -> None:
    bomb = gigabyte_of_zeros()
    assert len(bomb) < 1.2 * MiB
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:  # an honest archive: it declares what it holds
        assert archive.infolist()[0].file_size == 1024 * MiB
    serve(hostile, "bomb.zip", bomb)
    results = tmp_path / "results"
    before = written_bytes()
    opening = train().open_result(hostile.file_url("bomb.zip"), "Training result", str(results), "job-1")
    with (
        pytest.raises(UnsafeArchiveError, match=r"'zeros\.bin' declares 1073741824 bytes .* more than 100 times"),
        opening,
    ):
        pass
    assert written_bytes() - before < 20 * MiB  # the download itself; never the gigabyte
    assert not results.exists()


def test_a_huge_model_summary_is_not_read_whole(hostile: HostileServer, tmp_path: Path) -> None:
    """Above the JSON limit (8 MiB) the summary stays unread on disk; the metrics still come."""
    rng = random.Random(22)
    numbers = ",".join(str(rng.randrange(10**9)) for _ in range(1_200_000))  # about 11 MiB, 2:1 compressed
    summary = f'{{"rows": [{numbers}]}}'.encode()
    assert len(summary) > 10 * MiB
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model_summary.json", summary)
        archive.writestr("metrics.json", b'{"auc": 0.9}')
    serve(hostile, "summary.zip", buffer.getvalue())
    del numbers, summary
    tracemalloc.start()
    try:
        with train().open_result(
            hostile.file_url("summary.zip"), "Training result", str(tmp_path / "r"), "job-1"
        ) as result:
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.summary is None
    assert result.metrics == {"auc": 0.9}
    assert (tmp_path / "r" / "job-1" / "model_summary.json").stat().st_size > 10 * MiB  # kept, not parsed
    assert peak < 10 * MiB, f"peak {peak / MiB:.1f} MiB: the summary was read"


def test_an_archive_of_100_000_empty_members_is_refused_quickly(hostile: HostileServer, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(100_000):
            archive.writestr(f"m{i}", b"")
    serve(hostile, "many.zip", buffer.getvalue())
    results = tmp_path / "results"
    started = time.perf_counter()
    opening = train().open_result(hostile.file_url("many.zip"), "Training result", str(results), "job-1")
    with pytest.raises(UnsafeArchiveError, match=r"100000 members, more than the 10000 allowed"), opening:
        pass
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"{elapsed:.1f} s"  # was 16 s here (54 s in the review), extracting every member
    assert not results.exists()


def test_a_member_count_that_lies_in_the_end_record_is_counted_again(tmp_path: Path) -> None:
    """The end record's count is only a shortcut: the members parsed are what is limited."""
    from airflow_provider_predone.files import safe_extract

    archive = bytearray(zip_of(*((f"m{i}", b"") for i in range(5))))
    end = archive.rfind(b"PK\x05\x06")
    struct.pack_into("<2H", archive, end + 8, 1, 1)  # "one member" on this disk and in total
    (tmp_path / "liar.zip").write_bytes(archive)
    with pytest.raises(UnsafeArchiveError, match="5 members, more than the 4 allowed"):
        safe_extract(tmp_path / "liar.zip", tmp_path / "out", limits=ArchiveLimits(max_members=4))
    assert not (tmp_path / "out").exists()


# --- extraction errors ----------------------------------------------------------------------------


def crc_error() -> bytes:
    archive = bytearray(zip_of(("metrics.json", b'{"auc": 0.9}'), ("model/weights.bin", b"\x01" * 1000)))
    at = archive.find(b"\x01" * 1000)
    archive[at + 500] ^= 0xFF  # stored, so one flipped byte is a CRC mismatch
    return bytes(archive)


def cut_member() -> bytes:
    payload = b"prediction,row\n" * 10_000
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compressor.compress(payload) + compressor.flush()
    return raw_zip(
        "predictions.csv",
        data[: len(data) // 2],
        method=zipfile.ZIP_DEFLATED,
        crc=zlib.crc32(payload),
        size=len(payload),
    )


BROKEN = {
    "file_then_folder": (lambda: zip_of(("a", b"x"), ("a/b", b"y")), r"member 'a/b' needs 'a' to be both"),
    "folder_then_file": (lambda: zip_of(("a/b", b"y"), ("a", b"x")), r"member 'a' needs 'a' to be both"),
    "name_too_long": (lambda: zip_of(("ok.txt", b"x"), ("n" * 300, b"x")), r"'n{300}' has a path too long"),
    "crc_error": (crc_error, r"member 'model/weights\.bin' cannot be extracted \(BadZipFile: Bad CRC-32"),
    "truncated": (cut_member, r"member 'predictions\.csv' cannot be extracted \((BadZipFile|EOFError|error)"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_member_is_a_typed_refusal_naming_it_and_leaves_nothing(
    hostile: HostileServer, tmp_path: Path, case: str
) -> None:
    build, message = BROKEN[case]
    serve(hostile, f"{case}.zip", build())
    before = every_path(tmp_path)
    opening = train().open_result(hostile.file_url(f"{case}.zip"), "Training result", str(tmp_path / "r"), "job-1")
    with pytest.raises(UnsafeArchiveError, match=message) as raised, opening:
        pass
    assert SIGNATURE not in str(raised.value)
    assert every_path(tmp_path) == before, every_path(tmp_path) - before  # result_dir too was taken back


def combined_with_crc_error() -> bytes:
    """New content for an existing file, a new file, a new folder, then a member whose CRC does not match."""
    archive = bytearray(
        zip_of(
            ("model_summary.json", b'{"from": "the broken archive"}'),
            ("new.txt", b"new"),
            ("model/new/deeper.txt", b"new"),
            ("model/weights.bin", b"\x01" * 1000),
        )
    )
    at = archive.find(b"\x01" * 1000)
    archive[at + 500] ^= 0xFF
    return bytes(archive)


def test_a_failed_extraction_keeps_what_the_folders_held_before(hostile: HostileServer, tmp_path: Path) -> None:
    """A retried task extracts into the folder of its first attempt: a failure must not eat it."""
    results = tmp_path / "results"
    (results / "job-1" / "model").mkdir(parents=True)
    (results / "other.txt").write_text("a file of the user's")
    (results / "job-1" / "model_summary.json").write_text('{"from": "the first attempt"}')
    (results / "job-1" / "model" / "old.bin").write_bytes(b"old")
    before = {path: path.read_bytes() for path in results.rglob("*") if path.is_file()}
    folders = sorted(path for path in results.rglob("*") if path.is_dir())
    serve(hostile, "broken.zip", combined_with_crc_error())
    opening = train().open_result(hostile.file_url("broken.zip"), "Training result", str(results), "job-1")
    with pytest.raises(UnsafeArchiveError, match=r"'model/weights\.bin' cannot be extracted"), opening:
        pass
    assert {path: path.read_bytes() for path in results.rglob("*") if path.is_file()} == before
    assert sorted(path for path in results.rglob("*") if path.is_dir()) == folders
    assert sorted(p.name for p in results.iterdir()) == ["job-1", "other.txt"]  # no staging folder left


def test_extracting_again_into_the_same_folder_replaces_its_files(hostile: HostileServer, tmp_path: Path) -> None:
    """Control: a switch extracting the archive its retrain already extracted succeeds, file by file."""
    results = tmp_path / "results"
    (results / "job-1").mkdir(parents=True)
    (results / "job-1" / "model_summary.json").write_text('{"from": "the first attempt"}')
    (results / "job-1" / "notes.txt").write_text("the user's")
    serve(hostile, "again.zip", zip_of(("model_summary.json", b'{"auc": 0.8}'), ("sub/x.csv", b"a,b\n")))
    with train().open_result(hostile.file_url("again.zip"), "Training result", str(results), "job-1") as result:
        assert result.summary == {"auc": 0.8}
    assert sorted(every_path(results)) == [
        "job-1",
        "job-1/model_summary.json",
        "job-1/notes.txt",
        "job-1/sub",
        "job-1/sub/x.csv",
    ]


# --- the extraction folder --------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["../dags", "../../airflow/dags", "ABSOLUTE", "..", ".", "", "sub/../.."])
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (train, "external_process_id"),
        (lambda: PredictionOneRetrainOperator(task_id="r", model_id=1, train_data="x.csv"), "retrain_job_id"),
    ],
)
def test_a_job_id_cannot_move_the_result_out_of_result_dir(
    hostile: HostileServer, tmp_path: Path, job_id: str, make: object, field: str
) -> None:
    """The second guard, at the path: whatever the id validation let through, ``result_dir`` holds."""
    dags = tmp_path / "dags"
    dags.mkdir()
    results = tmp_path / "results"
    job_id = str(tmp_path / "dags") if job_id == "ABSOLUTE" else job_id
    downloads = serve(hostile, "evil.zip", zip_of(("evil_dag.py", b"print('pwned')")))
    before = every_path(tmp_path)
    operator = make()  # type: ignore[operator]
    opening = operator.open_result(hostile.file_url("evil.zip"), "Result", str(results), job_id)
    with (
        pytest.raises(UnsafeArchiveError, match=rf"^{field} .* cannot name a folder under result_dir") as raised,
        opening,
    ):
        pass
    assert "nothing was downloaded" in str(raised.value)
    assert downloads == []  # refused before the download
    assert every_path(tmp_path) == before
    assert not list(tmp_path.rglob("evil_dag.py"))


# --- the limits, per operator -----------------------------------------------------------------------


def test_result_limits_change_what_an_operator_accepts(hostile: HostileServer, tmp_path: Path) -> None:
    zeros = io.BytesIO()
    with zipfile.ZipFile(zeros, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(4 * MiB))  # about 1,000 times smaller
        archive.writestr("metrics.json", b'{"auc": 0.9}')
    serve(hostile, "zeros.zip", zeros.getvalue())
    url = hostile.file_url("zeros.zip")
    with pytest.raises(UnsafeArchiveError, match="more than 100 times"), train().open_result(url, "R", None, "j"):
        pass
    lenient = train(result_limits=ArchiveLimits(max_ratio=2000))
    with lenient.open_result(url, "R", None, "j") as result:
        assert result.metrics == {"auc": 0.9}
    strict = train(result_limits=ArchiveLimits(max_ratio=2000, max_members=1))
    with (
        pytest.raises(UnsafeArchiveError, match=r"2 members, more than the 1 allowed"),
        strict.open_result(url, "R", None, "j"),
    ):
        pass
    small_json = train(result_limits=ArchiveLimits(max_ratio=2000, max_json_bytes=5))
    with small_json.open_result(url, "R", None, "j") as result:
        assert result.metrics is None  # metrics.json (12 bytes) was not parsed
    total = PredictionOneSwitchModelOperator(
        task_id="s", retrain_job_id="j", model_id=1, result_limits=ArchiveLimits(max_ratio=2000, max_total_bytes=MiB)
    )
    with (
        pytest.raises(UnsafeArchiveError, match=r"more than 1048576 bytes in total"),
        total.open_result(url, "R", str(tmp_path / "r"), "j"),
    ):
        pass
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "value",
    [{"max_members": 5}, "ArchiveLimits()", 0],
)
def test_result_limits_must_be_archive_limits(value: object) -> None:
    with pytest.raises(InvalidInputError, match="result_limits must be an ArchiveLimits"):
        train(result_limits=value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_members", 0),
        ("max_total_bytes", -1),
        ("max_json_bytes", 1.5),
        ("max_ratio", 0.5),
        ("max_ratio", float("nan")),
    ],
)
def test_archive_limits_refuse_nonsense_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=rf"result_limits: {field} must be"):
        ArchiveLimits(**{field: value})  # type: ignore[arg-type]
