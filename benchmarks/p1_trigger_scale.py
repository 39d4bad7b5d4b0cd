"""
P1 — status polling at scale.

N concurrent status triggers (our real :class:`PredictionOneTrainTrigger`, each polling a
distinct training on the emulator) in one event loop, against two baselines that send the
same GETs from the same number of coroutines on the same schedule:

* ``floor`` — one shared ``aiohttp`` session, a bare GET per poll (the body is read, not parsed);
* ``common`` — the pattern many triggers follow: per poll a connection lookup
  (``get_async_connection``) and a new ``aiohttp.ClientSession``, then GET and ``json()``.

Each variant runs in a fresh client process. Pollers start staggered over one poll
interval (as triggers accumulate in a real triggerer), are left to warm up for one interval
(first poll, API key, log line), then the client's process CPU time and the emulator's
request counter are read over a measured window; CPU seconds per poll is their quotient.
Peak RSS per idle trigger is the client's RSS peak during the run above its RSS before the
pollers started, divided by N. The emulator is another process (its CPU is reported too).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import itertools
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _common as common

ID = "P1"
MODULE = "benchmarks.p1_trigger_scale"
VARIANTS = ("trigger", "floor", "common")
CONFIG = {"tc": "purchased", "tt": "binary_classification", "tv": "yes"}
GOAL_FLOOR, GOAL_COMMON, GOAL_KB = 1.5, 0.5, 50.0


@dataclass(frozen=True)
class Settings:
    triggers: int = 2000
    interval: float = 5.0  # seconds between polls of one trigger
    window: float = 8.0  # measured seconds
    repetitions: int = 3

    @classmethod
    def quick(cls) -> Settings:
        return cls(triggers=200, interval=2.0, window=3.0, repetitions=1)


# --- set-up: N trainings that stay running ------------------------------------------------------


def _tiny_csv(rows: int = 20) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "visits", "plan", "purchased"])
    for i in range(rows):
        writer.writerow([f"C{i:03d}", i % 7, ("free", "pro")[i % 2], ("yes", "no")[i % 3 == 0]])
    return out.getvalue().encode()


def create_trainings(url: str, count: int) -> list[str]:
    """Start ``count`` trainings (the emulator keeps them running); answers their external process ids."""
    import requests

    base = f"{url}/v1/external"
    session = requests.Session()
    key = session.get(
        f"{base}/api-key", params={"credential_type": "train"}, headers={"x-api-key": common.SECRET_KEY}, timeout=30
    ).json()["api_key"]
    data = _tiny_csv()

    def one(_: int) -> str:
        headers = {"x-api-key": key}
        urls = session.get(f"{base}/data-sets/upload-url", params={"extension": "csv"}, headers=headers, timeout=30)
        urls.raise_for_status()
        body = urls.json()
        session.put(body["learn_data_set_upload_url"], data=data, timeout=30).raise_for_status()
        process_id: str = body["external_process_id"]
        created = session.post(
            f"{base}/models",
            json={"external_process_id": process_id, "name": f"bench-{process_id[:8]}", "config": CONFIG},
            headers=headers,
            timeout=30,
        )
        created.raise_for_status()
        return process_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def wait_idle(pid: int, *, quiet_seconds: float = 0.5, limit: float = 120.0) -> None:
    """Wait until the emulator stops burning CPU (the trainings it computes in the background)."""
    deadline = time.monotonic() + limit
    last = common.process_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_seconds)
        now = common.process_cpu_seconds(pid)
        if now - last < 0.05 * quiet_seconds:
            return
        last = now


# --- the client process --------------------------------------------------------------------------


def _state_requests(url: str) -> int:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/_emulator/state", timeout=30) as answer:
        return int(json.load(answer)["requests"])


async def _measure(variant: str, url: str, ids: list[str], settings: Settings, emulator_pid: int) -> dict[str, Any]:
    import aiohttp

    from airflow_provider_predone.protocol import predone as api

    status_url = f"{url}/v1/external" + api.get_train_status("x").path
    interval = settings.interval
    shared: dict[str, Any] = {}

    async def ticks() -> AsyncIterator[int]:
        """The baselines poll on a fixed schedule, so a slow variant does not send fewer GETs."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for tick in itertools.count():
            yield tick
            await asyncio.sleep(max(0.0, start + (tick + 1) * interval - loop.time()))

    async def api_key() -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{url}/v1/external/api-key",
                params={"credential_type": "train"},
                headers={"x-api-key": common.SECRET_KEY},
            ) as answer,
        ):
            return str((await answer.json())["api_key"])

    if variant == "trigger":
        from airflow_provider_predone.triggers.predone import PredictionOneTrainTrigger

        async def poller(process_id: str) -> None:
            trigger = PredictionOneTrainTrigger(
                process_id, conn_id=common.CONN_ID, poll_interval=interval, deadline=time.time() + 3600
            )
            async for event in trigger.run():
                raise RuntimeError(f"trigger fired during the benchmark: {event.payload}")

    elif variant == "floor":
        key = await api_key()

        async def poller(process_id: str) -> None:
            session: aiohttp.ClientSession = shared["session"]
            target = f"{status_url}?external_process_id={process_id}"
            headers = {"x-api-key": key}
            async for _ in ticks():
                async with session.get(target, headers=headers) as answer:
                    await answer.read()

    elif variant == "common":
        from airflow.providers.common.compat.connection import get_async_connection

        key = await api_key()

        async def poller(process_id: str) -> None:
            async for _ in ticks():
                conn = await get_async_connection(common.CONN_ID)
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(
                        f"{api.base_url(None, conn.host)}/models/results",
                        params={"external_process_id": process_id},
                        headers={"x-api-key": key},
                    ) as answer,
                ):
                    answer.raise_for_status()
                    await answer.json()

    else:
        raise ValueError(f"unknown variant {variant!r}")

    async def staggered(delay: float, process_id: str) -> None:
        await asyncio.sleep(delay)
        await poller(process_id)

    # Warm-up: one poller to its first request, so imports and one-time set-up are not counted
    # in the per-trigger memory, nor take the measured window (a fresh process's first
    # connection lookup took 1.2 s on Airflow 3.0.6, longer than the smoke test's whole window).
    if variant == "floor":
        shared["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    requests_before = await asyncio.to_thread(_state_requests, url)
    warm = asyncio.create_task(poller(ids[0]))
    deadline = time.monotonic() + 60
    while await asyncio.to_thread(_state_requests, url) == requests_before:
        if warm.done():
            warm.result()  # a poller that died is a broken benchmark
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {variant} poller sent nothing in 60 s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(min(1.0, interval / 2))
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)

    rss_before = common.rss_kib()
    peak_reset = common.reset_peak_rss()
    count = len(ids)
    tasks = [asyncio.create_task(staggered(interval * i / count, process_id)) for i, process_id in enumerate(ids)]
    await asyncio.sleep(interval + min(1.0, interval))  # all started, each polled at least once
    for task in tasks:
        if task.done():
            task.result()  # a poller that died is a broken benchmark
    requests_0 = await asyncio.to_thread(_state_requests, url)
    cpu_0, wall_0, server_0 = time.process_time(), time.perf_counter(), common.process_cpu_seconds(emulator_pid)
    await asyncio.sleep(settings.window)
    cpu_1, wall_1, server_1 = time.process_time(), time.perf_counter(), common.process_cpu_seconds(emulator_pid)
    requests_1 = await asyncio.to_thread(_state_requests, url)
    rss_peak = common.peak_rss_kib()
    failed = [task for task in tasks if task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if "session" in shared:
        await shared["session"].close()
    if failed:
        failed[0].result()
    polls = requests_1 - requests_0
    return {
        "variant": variant,
        "triggers": count,
        "polls": polls,
        "window": wall_1 - wall_0,
        "cpu": cpu_1 - cpu_0,
        "cpu_per_poll": (cpu_1 - cpu_0) / max(polls, 1),
        "server_cpu_per_poll": (server_1 - server_0) / max(polls, 1),
        "rss_before_kib": rss_before,
        "rss_peak_kib": rss_peak,
        "peak_reset": peak_reset,
        "kib_per_trigger": (rss_peak - rss_before) / count,
    }


def worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=f"{MODULE} worker")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--url", required=True)
    parser.add_argument("--ids", required=True, type=Path)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--emulator-pid", type=int, required=True)
    options = parser.parse_args(argv)
    ids = options.ids.read_text().split()
    settings = Settings(triggers=len(ids), interval=options.interval, window=options.window)
    common.emit(asyncio.run(_measure(options.variant, options.url, ids, settings, options.emulator_pid)))


# --- the benchmark -------------------------------------------------------------------------------


def run(settings: Settings, log: Callable[[str], None] = print) -> str:
    """Run P1 and answer its summary line."""
    from airflow_provider_predone.emulator import EmulatorProcess

    with EmulatorProcess(job_seconds=10 * 24 * 3600, api_key_ttl=10 * 24 * 3600) as emulator:
        common.use_emulator(emulator.url)
        started = time.perf_counter()
        ids = create_trainings(emulator.url, settings.triggers)
        wait_idle(emulator.pid)
        log(f"P1: {len(ids)} trainings running on the emulator ({time.perf_counter() - started:.1f} s to set up)")
        with tempfile.TemporaryDirectory(prefix="predone-bench-p1-") as folder:
            ids_file = Path(folder) / "ids.txt"
            ids_file.write_text("\n".join(ids))
            results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
            for repetition in range(settings.repetitions):
                # Rotate the order so no variant always runs first (or last) in a repetition.
                order = VARIANTS[repetition % 3 :] + VARIANTS[: repetition % 3]
                for variant in order:
                    result = common.run_worker(
                        MODULE,
                        [
                            variant,
                            f"--url={emulator.url}",
                            f"--ids={ids_file}",
                            f"--interval={settings.interval}",
                            f"--window={settings.window}",
                            f"--emulator-pid={emulator.pid}",
                        ],
                    )
                    results[variant].append(result)
                    log(
                        f"P1 {repetition + 1}/{settings.repetitions} {variant:8}: {result['polls']} polls, "
                        f"{result['cpu_per_poll'] * 1e6:.0f} us client CPU/poll, "
                        f"{result['server_cpu_per_poll'] * 1e6:.0f} us emulator CPU/poll, "
                        f"{result['kib_per_trigger']:.1f} KiB/trigger"
                    )
    return summarise(settings, results)


def summarise(settings: Settings, results: dict[str, list[dict[str, Any]]]) -> str:
    """The summary line: ratios are medians of the per-repetition ratios (variants run back to back)."""
    per_poll = {v: common.median(r["cpu_per_poll"] for r in results[v]) for v in VARIANTS}
    polls = {v: int(common.median(r["polls"] for r in results[v])) for v in VARIANTS}
    kib = {v: common.median(r["kib_per_trigger"] for r in results[v]) for v in VARIANTS}
    pairs = list(zip(results["trigger"], results["floor"], results["common"], strict=True))
    floor_ratios = [t["cpu_per_poll"] / f["cpu_per_poll"] for t, f, _ in pairs]
    common_ratios = [t["cpu_per_poll"] / c["cpu_per_poll"] for t, _, c in pairs]
    vs_floor, vs_common = common.median(floor_ratios), common.median(common_ratios)
    kb = kib["trigger"] * 1024 / 1000
    return (
        f"{ID} triggers={settings.triggers} interval={settings.interval:g}s "
        f"cpu/poll us: trigger={per_poll['trigger'] * 1e6:.0f} floor={per_poll['floor'] * 1e6:.0f} "
        f"common={per_poll['common'] * 1e6:.0f} | "
        f"vs_floor={vs_floor:.2f}x (goal<={GOAL_FLOOR}, {common.verdict(vs_floor <= GOAL_FLOOR)}) "
        f"vs_common={vs_common:.2f}x (goal<={GOAL_COMMON}, {common.verdict(vs_common <= GOAL_COMMON)}) "
        f"rss/trigger={kb:.1f}KB (goal<={GOAL_KB:g}, {common.verdict(kb <= GOAL_KB)}) "
        f"[per repetition vs_floor {'/'.join(f'{r:.2f}' for r in floor_ratios)}, "
        f"vs_common {'/'.join(f'{r:.2f}' for r in common_ratios)}; "
        f"polls/window trigger={polls['trigger']} floor={polls['floor']} common={polls['common']}; "
        f"medians of {settings.repetitions}]"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        common.prepare_environment()
        worker(sys.argv[2:])
    else:
        raise SystemExit(f"usage: python -m benchmarks {ID}")
