"""
P2 — streaming transfers: the client CPU they cost, against curl's.

Upload: a 1 GiB CSV through ``PredictionOneHook.upload`` to a presigned upload URL, against
``curl -T`` of the same file to an equivalent URL (from a second Get Upload URL). Download:
the same 1 GiB uploaded as training data and fetched through its data set's presigned
``download_url`` with ``PredictionOneHook.download``, against ``curl -o``. Each repetition is
a pair, hook and curl back to back, alternating which goes first.

The measure is what the hook controls: CPU seconds (user + system) per GiB of the client
process, the hook's against curl's on the same file in the same run, as the median of the
per-pair ratios. Wall-clock throughput on a shared 2-core machine depends on which of a pair
goes first (one run: 739 vs 1,598 MiB/s, then 2,001 vs 902), so it is only reported, best of
the repetitions. curl's CPU is its whole process (``RUSAGE_CHILDREN``, a few ms of start-up
included); the hook's is its process's CPU during the transfer (``time.process_time``, all
threads), Python's start-up and imports left out as the task's would be.

The hook runs in a fresh subprocess that also reports its peak RSS growth: VmHWM is reset
(``/proc/self/clear_refs``) just before the transfer, and the peak after it is compared with
the RSS before. The uploads go to column-info URLs, which the
emulator stores without reading them, so no server-side work follows one measurement into
the next. One unmeasured curl transfer each way comes first: the first writer of a GiB to a
fresh tmpfs pays for zeroing its pages (seen: 3 CPU s instead of 0.5), whoever it is.
Where there are two CPUs or more, the emulator runs on one and the clients on another: left
to the scheduler, the same transfer took 0.5 or 1.1 CPU s/GiB by where it landed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import _common as common

ID = "P2"
MODULE = "benchmarks.p2_streaming"
GOAL_MIB, GOAL_CPU = 64.0, 1.2  # peak RSS growth; hook CPU per GiB as a multiple of curl's
MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class Settings:
    size_mib: int = 1024
    repetitions: int = 6  # even: each side goes first equally often (the second of a pair runs slower here)

    @classmethod
    def quick(cls) -> Settings:
        return cls(size_mib=128, repetitions=2)


def write_csv(path: Path, size_mib: int) -> int:
    """A CSV of exactly ``size_mib`` MiB: a header, then rows, written 1 MiB at a time."""
    header = b"customer_id,age,plan,visits,signup,spend,purchased\n"
    rows = b"".join(
        f"C{i:07d},{18 + i % 60},{('free', 'basic', 'pro')[i % 3]},{i % 31},2024-{1 + i % 12:02d}-"
        f"{1 + i % 28:02d},{(i * 7919) % 10000 / 100:.2f},{('yes', 'no')[i % 2]}\n".encode()
        for i in range(30000)  # about 1.5 MiB: more than a block
    )
    with path.open("wb") as out:
        for number in range(size_mib):
            out.write(_block(header if number == 0 else b"", rows))
    return path.stat().st_size


def _block(head: bytes, rows: bytes) -> bytes:
    """``head`` + whole rows + one row whose id is padded so that the block is exactly 1 MiB."""
    tail = b",30,pro,12,2024-01-01,10.00,yes\n"
    room = MIB - len(head)
    body = rows[: rows.rindex(b"\n", 0, room - 200) + 1]
    padding = room - len(body) - len(tail) - 1
    return head + body + b"P" + b"0" * padding + tail


def scratch_dir(size_mib: int) -> str | None:
    """/dev/shm when it has room: disk write-back stalls would otherwise dominate both sides' timings."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 4 * size_mib * MIB:
        return str(shm)
    return None


# --- the hook, in a fresh process ----------------------------------------------------------------


def worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=f"{MODULE} worker")
    parser.add_argument("direction", choices=("upload", "download"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True, type=Path)
    options = parser.parse_args(argv)

    from airflow_provider_predone import files
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    hook = PredictionOneHook()
    hook._transport.session  # the session exists before the measurement, as in a task  # noqa: B018
    if options.direction == "upload":
        source = files.resolve("input_data", options.path)

        def transfer() -> int:
            return hook.upload(options.url, source, label="Benchmark upload")

    else:

        def transfer() -> int:
            return hook.download(options.url, options.path, label="Benchmark download")

    rss_before = common.rss_kib()
    peak_reset = common.reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    size = transfer()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    common.emit(
        {
            "bytes": size,
            "seconds": seconds,
            "cpu": cpu,
            "rss_growth_mib": (common.peak_rss_kib() - rss_before) / 1024,
            "rss_before_mib": rss_before / 1024,
            "peak_reset": peak_reset,
        }
    )


def curl(*arguments: str) -> tuple[float, float]:
    """Run curl; answer its own ``time_total`` and the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*", "-w", "%{time_total}", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"curl {' '.join(arguments[:1])} failed ({done.returncode}): {done.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return float(done.stdout.strip().splitlines()[-1]), cpu


def transfer(who: str, direction: str, url: str, path: Path) -> dict[str, float]:
    """One measured transfer by the hook (in a fresh process) or curl: seconds, CPU seconds, RSS growth."""
    if who == "hook":
        result = common.run_worker(MODULE, [direction, f"--url={url}", f"--path={path}"])
        return {"hook": result["seconds"], "hook_cpu": result["cpu"], "rss": result["rss_growth_mib"]}
    arguments = ("-T", str(path), "-o", "/dev/null") if direction == "upload" else ("-o", str(path))
    seconds, cpu = curl(*arguments, url)
    return {"curl": seconds, "curl_cpu": cpu}


# --- the benchmark -------------------------------------------------------------------------------


def run(settings: Settings, log: Callable[[str], None] = print) -> str:
    """Run P2 and answer its summary line."""
    from airflow_provider_predone.emulator import EmulatorProcess
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    folder = Path(tempfile.mkdtemp(prefix="predone-bench-p2-", dir=scratch_dir(settings.size_mib)))
    log(f"P2: files in {folder} ({settings.size_mib} MiB source)")
    try:
        source = folder / "big.csv"
        size = write_csv(source, settings.size_mib)
        with EmulatorProcess(data_dir=str(folder / "emulator"), test_controls=True) as emulator:
            pin_apart(emulator.pid)
            common.use_emulator(emulator.url)
            hook = PredictionOneHook()
            results: dict[str, list[dict[str, float]]] = {"upload": [], "download": []}

            # Download: the file as training data, fetched from its data set's download URL.
            learn = hook.get_upload_urls().learn_data_set_upload_url
            curl("-T", str(source), "-o", "/dev/null", learn)
            data_set = next(item for item in hook.list_data_sets() if item["data_size"] == size)
            warm_up = folder / "warm-up.csv"
            curl("-o", str(warm_up), data_set["download_url"])
            warm_up.unlink()
            for repetition in range(settings.repetitions):
                measured: dict[str, float] = {}
                for who in ("hook", "curl") if repetition % 2 == 0 else ("curl", "hook"):
                    listed = next(i for i in hook.list_data_sets() if i["data_set_id"] == data_set["data_set_id"])
                    target = folder / f"download-{who}.csv"
                    measured.update(transfer(who, "download", listed["download_url"], target))
                    if target.stat().st_size != size:
                        raise RuntimeError(f"{who} downloaded {target.stat().st_size} of {size} bytes")
                    target.unlink()
                results["download"].append(measured)
                log(_line("download", repetition, settings, size, measured))
            emulator.reset()  # frees the stored file

            curl("-T", str(source), "-o", "/dev/null", hook.get_upload_urls().column_info_upload_url)
            emulator.reset()
            for repetition in range(settings.repetitions):
                measured = {}
                for who in ("hook", "curl") if repetition % 2 == 0 else ("curl", "hook"):
                    url = hook.get_upload_urls().column_info_upload_url
                    measured.update(transfer(who, "upload", url, source))
                state = emulator.state()
                if state["bytes_uploaded"] != 2 * size:
                    raise RuntimeError(f"the emulator received {state['bytes_uploaded']} bytes, not {2 * size}")
                emulator.reset()
                results["upload"].append(measured)
                log(_line("upload", repetition, settings, size, measured))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return summarise(settings, size, results)


def pin_apart(server_pid: int) -> None:
    """The server's threads on the first CPU we may use, this process and its children on another."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    if len(cpus) < 2:
        return
    for thread in Path(f"/proc/{server_pid}/task").iterdir():
        os.sched_setaffinity(int(thread.name), {cpus[0]})
    os.sched_setaffinity(0, {cpus[1]})


def _line(direction: str, repetition: int, settings: Settings, size: int, measured: dict[str, float]) -> str:
    return (
        f"P2 {repetition + 1}/{settings.repetitions} {direction:8}: CPU s/GiB hook "
        f"{measured['hook_cpu'] * GIB / size:.3f}, curl {measured['curl_cpu'] * GIB / size:.3f} "
        f"({_ratio(measured['hook_cpu'], measured['curl_cpu']):.2f}x); hook {size / MIB / measured['hook']:.0f} MiB/s, "
        f"curl {size / MIB / measured['curl']:.0f} MiB/s; hook peak RSS growth {measured['rss']:.1f} MiB"
    )


def _ratio(hook: float, curl: float) -> float:
    """hook / curl; infinite when curl's CPU time rounds to 0 (a tiny smoke-test file)."""
    return hook / curl if curl > 0 else float("inf")


def summarise(settings: Settings, size: int, results: dict[str, list[dict[str, float]]]) -> str:
    parts = []
    for direction in ("upload", "download"):
        runs = results[direction]
        ratios = [_ratio(r["hook_cpu"], r["curl_cpu"]) for r in runs]
        ratio = common.median(ratios)
        hook_cpu = common.median(r["hook_cpu"] * GIB / size for r in runs)
        curl_cpu = common.median(r["curl_cpu"] * GIB / size for r in runs)
        hook_best = max(size / MIB / r["hook"] for r in runs)
        curl_best = max(size / MIB / r["curl"] for r in runs)
        rss = max(r["rss"] for r in runs)
        parts.append(
            f"{direction}: cpu={ratio:.2f}x curl (goal<={GOAL_CPU:g}, {common.verdict(ratio <= GOAL_CPU)}; "
            f"hook {hook_cpu:.3f} vs curl {curl_cpu:.3f} CPU-s/GiB; pairs {'/'.join(f'{x:.2f}' for x in ratios)}) "
            f"rss_growth={rss:.1f}MiB (goal<={GOAL_MIB:g}, {common.verdict(rss <= GOAL_MIB)}) "
            f"best hook={hook_best:.0f}MiB/s curl={curl_best:.0f}MiB/s"
        )
    return (
        f"{ID} file={size / MIB:.0f}MiB | "
        + " | ".join(parts)
        + f" [CPU: median of {settings.repetitions} interleaved pairs; RSS growth: worst run; throughput: best]"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        common.prepare_environment()
        worker(sys.argv[2:])
    else:
        raise SystemExit(f"usage: python -m benchmarks {ID}")
