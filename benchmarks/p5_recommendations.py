"""
P5 — AiTEMS recommendations out: lookups per second against the ceiling the service's latency sets.

The emulator answers each recommendations lookup 20 ms after it arrives
(``--inference-latency-ms 20``, the same setting as Prediction One's inference). A service's
``personalRecommend`` model is trained on 2,000 users' views (the emulator's test control sets
the interactions and completes the training), ten recommendations per user. Then
:class:`AitemsRecommendationsOperator` (``execute`` in a fresh process, writing CSV) looks up:

* 600 targets with one lookup in flight (``max_in_flight=1``): its time per target is the
  latency ``L`` a lookup takes (the 20 ms, the loopback round trip, the signature and the
  client's own work, one after the other);
* 2,000 targets at the default ``max_in_flight=8`` and 10,000 at 32.

With ``c`` in flight no client looks up more than ``c / L`` targets per second: each rate is
printed as a fraction of that ceiling (medians of the per-repetition fractions; goal at least
0.9 at 8 and at 32). Memory: the peak RSS growth of the looking-up process (VmHWM reset just
before) for 10,000 targets against 1,000, at 32 in flight; flat means about the same growth.
The emulator runs on a CPU of its own, as in P4 (:func:`~benchmarks.p4_scoring.separate_cores`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _common as common

ID = "P5"
MODULE = "benchmarks.p5_recommendations"
GOAL_OF_CEILING = 0.9
LATENCY_MS = 20
DEFAULT_CONCURRENCY = 8  # AitemsRecommendationsOperator's default max_in_flight
USERS = 2_000
ITEMS = 500
VIEWS = 5  # items per user
TOP = 10  # recommendations per user (the training's max_user_recommend_top)
ACCESS_KEY = "demo-aitems-access-key"
SECRET_KEY = "demo-aitems-secret-key"
CONN_ENV = "AIRFLOW_CONN_AITEMS_DEFAULT"


@dataclass(frozen=True)
class Settings:
    targets: int = 10_000
    small_targets: int = 1_000  # the memory comparison
    single_targets: int = 600  # one in flight: the latency
    default_targets: int = 2_000
    concurrency: int = 32
    repetitions: int = 3

    @classmethod
    def quick(cls) -> Settings:
        return cls(targets=1_000, small_targets=200, single_targets=100, default_targets=400, repetitions=1)


def use_emulator(url: str) -> None:
    """Point ``aitems_default`` at the emulator (an env-var connection, no DB)."""
    os.environ[CONN_ENV] = json.dumps({"conn_type": "aitems", "host": url, "login": ACCESS_KEY, "password": SECRET_KEY})


def views() -> list[list[str]]:
    """Each user viewed ``VIEWS`` items around a favourite one: users who share items are neighbours."""
    return [[f"u{u:05d}", f"i{(u * 7 + k) % ITEMS:04d}"] for u in range(USERS) for k in range(VIEWS)]


def trained_service(emulator_url: str) -> str:
    """A service whose personalRecommend model is trained on :func:`views`; answers its id."""
    import requests

    from airflow_provider_predone.hooks.aitems import AitemsHook

    service_id = str(AitemsHook().create_service("bench_p5")["serviceId"])
    body = {
        "rows": views(),
        "trained": ["personalRecommend"],
        "hpConfig": {"is_enabled": False, "max_user_recommend_top": TOP},
    }
    answer = requests.post(f"{emulator_url}/_emulator/aitems/services/{service_id}/interactions", json=body, timeout=60)
    answer.raise_for_status()
    return service_id


def write_targets(path: Path, count: int) -> Path:
    """``count`` USER_IDs, one a line, cycling through the users."""
    with path.open("w", encoding="utf-8") as sink:
        sink.writelines(f"u{n % USERS:05d}\n" for n in range(count))
    return path


def worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=f"{MODULE} worker")
    parser.add_argument("--service-id", required=True)
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    options = parser.parse_args(argv)

    from airflow_provider_predone.operators.aitems import AitemsRecommendationsOperator

    operator = AitemsRecommendationsOperator(
        task_id="recommendations",
        service_id=options.service_id,
        targets=str(options.input),
        output_data=str(options.output),
        max_in_flight=options.concurrency,
    )
    operator.hook.connection_info  # resolved before the measurement  # noqa: B018
    rss_before = common.rss_kib()
    peak_reset = common.reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    result = operator.execute({})  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    targets = int(result["targets"])
    common.emit(
        {
            "targets": targets,
            "rows": int(result["rows"]),
            "seconds": seconds,
            "targets_per_second": targets / seconds,
            "cpu_per_target": cpu / max(targets, 1),
            "rss_growth_mib": (common.peak_rss_kib() - rss_before) / 1024,
            "peak_reset": peak_reset,
        }
    )


def run(settings: Settings, log: Callable[[str], None] = print) -> str:
    """Run P5 and answer its summary line."""
    from airflow_provider_predone.emulator import EmulatorProcess
    from benchmarks.p4_scoring import separate_cores

    with (
        tempfile.TemporaryDirectory(prefix="predone-bench-p5-") as scratch,
        EmulatorProcess(inference_latency_ms=LATENCY_MS, test_controls=True) as emulator,
        separate_cores(emulator.pid),
    ):
        folder = Path(scratch)
        use_emulator(emulator.url)
        service_id = trained_service(emulator.url)
        sizes = {settings.targets, settings.small_targets, settings.single_targets, settings.default_targets}
        inputs = {n: write_targets(folder / f"targets_{n}.txt", n) for n in sizes}
        output = folder / "recommendations.csv"

        def measure(targets: int, concurrency: int) -> dict[str, Any]:
            emulator_cpu = common.process_cpu_seconds(emulator.pid)
            result = common.run_worker(
                MODULE,
                [
                    f"--service-id={service_id}",
                    f"--input={inputs[targets]}",
                    f"--output={output}",
                    f"--concurrency={concurrency}",
                ],
            )
            result["emulator_cpu_per_target"] = (common.process_cpu_seconds(emulator.pid) - emulator_cpu) / targets
            if result["targets"] != targets or result["rows"] != targets * TOP:
                raise RuntimeError(f"looked up {result['targets']} of {targets} targets, {result['rows']} rows")
            output.unlink()
            log(
                f"P5 c={concurrency:<3} {targets:6} targets: {result['targets_per_second']:7.1f} targets/s, "
                f"{result['cpu_per_target'] * 1e6:.0f} us CPU/target "
                f"(emulator {result['emulator_cpu_per_target'] * 1e6:.0f}), "
                f"peak RSS growth {result['rss_growth_mib']:.1f} MiB"
            )
            return result

        single: list[dict[str, Any]] = []
        default: list[dict[str, Any]] = []
        big: list[dict[str, Any]] = []
        small: list[dict[str, Any]] = []
        for _ in range(settings.repetitions):
            single.append(measure(settings.single_targets, 1))
            default.append(measure(settings.default_targets, DEFAULT_CONCURRENCY))
            big.append(measure(settings.targets, settings.concurrency))
            small.append(measure(settings.small_targets, settings.concurrency))
    return summarise(settings, single, default, big, small)


def summarise(
    settings: Settings,
    single: list[dict[str, Any]],
    default: list[dict[str, Any]],
    big: list[dict[str, Any]],
    small: list[dict[str, Any]],
) -> str:
    # Ceiling of c in flight: c / latency, the latency from the one-in-flight run of the same repetition.
    fractions = {
        concurrency: [
            run["targets_per_second"] / (concurrency * one["targets_per_second"])
            for run, one in zip(runs, single, strict=True)
        ]
        for concurrency, runs in ((DEFAULT_CONCURRENCY, default), (settings.concurrency, big))
    }
    latency_ms = common.median(1000 / r["targets_per_second"] for r in single)
    of_ceiling = " ".join(
        f"c={c}: {common.median(values):.2f} of ceiling {c * 1000 / latency_ms:.0f} targets/s "
        f"(goal>={GOAL_OF_CEILING}, {common.verdict(common.median(values) >= GOAL_OF_CEILING)})"
        for c, values in sorted(fractions.items())
    )
    rates = {
        DEFAULT_CONCURRENCY: common.median(r["targets_per_second"] for r in default),
        settings.concurrency: common.median(r["targets_per_second"] for r in big),
    }
    big_mib = common.median(r["rss_growth_mib"] for r in big)
    small_mib = common.median(r["rss_growth_mib"] for r in small)
    constant = big_mib <= small_mib * 1.5 + 8
    per_repetition = " ".join(
        f"c={c}: {'/'.join(f'{v:.2f}' for v in values)}" for c, values in sorted(fractions.items())
    )
    return (
        f"{ID} latency={LATENCY_MS}ms added, {latency_ms:.1f}ms measured (max_in_flight 1) | {of_ceiling} | "
        f"targets/s: c={DEFAULT_CONCURRENCY} ({settings.default_targets} targets)={rates[DEFAULT_CONCURRENCY]:.0f} "
        f"c={settings.concurrency} ({settings.targets} targets)={rates[settings.concurrency]:.0f}, "
        f"{TOP} recommendations each | rss_growth {settings.targets} targets={big_mib:.1f}MiB vs "
        f"{settings.small_targets} targets={small_mib:.1f}MiB ({common.verdict(constant)}) "
        f"[per repetition {per_repetition}; medians of {settings.repetitions}]"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        common.prepare_environment()
        worker(sys.argv[2:])
    else:
        raise SystemExit(f"usage: python -m benchmarks {ID}")
