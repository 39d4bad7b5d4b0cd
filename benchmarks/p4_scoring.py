"""
P4 — scoring throughput.

The emulator adds 20 ms to every inference request (``--inference-latency-ms 20``). Scored
through one prediction API of a trained model:

* ours — :class:`PredictionOneBatchPredictOperator` (``execute`` in a fresh process, which
  runs :class:`~airflow_provider_predone.scoring.BatchScorer`) on 10,000 rows, at the
  benchmark's concurrency and at the operator's default (8);
* the vendor sample's loop — plain ``requests.post``, one row per request, one after the
  other, answers appended to a CSV. Its rate does not depend on the number of rows, and
  10,000 rows would take about four minutes, so it is measured on 600 rows.

Rows per second are compared (medians of the repetitions, run interleaved).

Against the ceiling: with ``c`` requests in flight and a latency ``L`` per row, no client
scores more than ``c / L`` rows/s. ``L`` is measured in the same run, each repetition, by the
operator itself with one request in flight (``concurrency=1``): the 20 ms, the loopback round
trip and the client's own work per row, one after the other. ``c / L`` is then ``c`` times
the one-at-a-time rate, perfect scaling, and each concurrency's rows/s is printed as a fraction
of it (goal: at least 0.9 at 8 and at 32). A bare ``requests`` client, the first choice here,
spent about 3 ms of its own per row: its ``L`` was too long, and the operator at 8 scored more
than "the ceiling". The emulator answers 20 ms after each request arrives, its scoring
within that, and runs on a CPU of its own (:func:`separate_cores`). Memory: the
peak RSS growth of the scoring process (VmHWM reset just before scoring) for 10,000 rows
against 1,000 rows; constant memory means about the same growth for both.

Under faults (the emulator's fault injection on every request, the two set-up requests of each
run left clean by the choice of seed), at the default concurrency on the same rows as its
fault-free run of the same repetition:

* 3 % slow answers only (``fault_kinds=slow``): each held :data:`SLOW_SECONDS`, past the
  management API's 30 s timeout; goal at least 0.8 of the fault-free rows/s;
* 20 % faults of every kind (the emulator's mix): goal at least 0.5 of the fault-free rows/s;
* the hedges sent (a row's request sent once more because its answer was late) as a share of
  the rows, over both (goal at most 5 %);
* peak RSS growth under the 20 % mix at the benchmark's concurrency, 10,000 rows against 1,000
  (medians of the repetitions): flat when the longer run adds at most :data:`FLAT_MIB`. A
  1,000-row run reaches the steady state of rows in flight, held and waiting to be retried
  (its first seconds), so whatever the longer run adds grows with the run itself.

A row fails for good after the connection's ``max_retries`` transient failures in a row; at 20 %
faults, 1 row in 40,000 would at the default of 5, so the benchmark's connection allows 10.
"""

from __future__ import annotations

import argparse
import base64
import csv
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _common as common

ID = "P4"
MODULE = "benchmarks.p4_scoring"
GOAL = 10.0
GOAL_OF_CEILING = 0.9  # rows/s over concurrency / latency
LATENCY_MS = 20
DEFAULT_CONCURRENCY = 8  # PredictionOneBatchPredictOperator's default
COLUMNS = ["customer_id", "age", "plan", "visits", "signup", "spend"]
TARGET = "purchased"
CONFIG = {"tc": TARGET, "tt": "binary_classification", "tv": "yes"}
SLOW_SECONDS = 35.0  # a slow answer: held past the management API's 30 s timeout
SLOW_RATE = 0.03
MIX_RATE = 0.2
GOAL_SLOW = 0.8  # of the fault-free rows/s at the default concurrency
GOAL_MIX = 0.5
GOAL_HEDGES = 0.05  # hedges per row
# Memory is flat when ten times the rows add at most this to the peak RSS growth under faults:
# two of pymalloc's 1 MiB arenas, the granularity in which Python's heap takes memory.
FLAT_MIB = 2.0
SETUP_REQUESTS = 4  # a run's requests before its first row (API key, prediction API), and a margin
MAX_RETRIES = 10


@dataclass(frozen=True)
class Settings:
    rows: int = 10_000
    small_rows: int = 1_000  # the memory comparison
    vendor_rows: int = 600
    default_rows: int = 2_000  # the default concurrency's runs, with and without faults
    concurrency: int = 32
    repetitions: int = 3

    @classmethod
    def quick(cls) -> Settings:
        return cls(rows=1_000, small_rows=200, vendor_rows=100, default_rows=400, repetitions=1)


def write_rows(path: Path, rows: int, *, seed: int, with_target: bool) -> Path:
    """Churn-like rows; the target depends on ``visits`` and ``plan``."""
    generator = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow([*COLUMNS, TARGET] if with_target else COLUMNS)
        for number in range(rows):
            plan = generator.choice(["free", "basic", "pro"])
            visits = generator.randint(0, 30)
            score = 0.25 * visits - 3.5 + (1.5 if plan == "pro" else 0.0)
            row = [
                f"C{number:06d}",
                generator.randint(18, 80),
                plan,
                visits,
                f"2024-{generator.randint(1, 12):02d}-{generator.randint(1, 28):02d}",
                round(10 + 2 * visits + generator.gauss(0, 5), 2),
            ]
            if with_target:
                row.append("yes" if generator.random() < 1 / (1 + 2.718281828**-score) else "no")
            writer.writerow(row)
    return path


def deploy(folder: Path) -> str:
    """Train a model and start a prediction API on the emulator; answers its classifier id."""
    from airflow_provider_predone import files
    from airflow_provider_predone.hooks.predone import PredictionOneHook

    hook = PredictionOneHook()
    training = write_rows(folder / "train.csv", 400, seed=1, with_target=True)
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("training_data", training), label="Training data")
    hook.create_model(urls.external_process_id, "bench-p4", CONFIG)
    _wait(lambda: hook.get_train_status(urls.external_process_id).status == "finished", "training")
    model_id = hook.find_model_id("bench-p4")
    if model_id is None:
        raise RuntimeError("the trained model is not in the model list")
    classifier_id = hook.create_prediction_api(model_id).classifier_id
    _wait(lambda: hook.get_prediction_api(classifier_id).status == "running", "prediction API")
    return classifier_id


def _wait(done: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {what} is not ready after {limit} s")
        time.sleep(0.2)


# --- the scoring processes -----------------------------------------------------------------------


def vendor_loop(url: str, api_key: str, source: Path, output: Path) -> int:
    """The vendor sample's way: one POST per row with plain ``requests``, one after the other."""
    import requests

    scored = 0
    with source.open(newline="", encoding="utf-8") as rows, output.open("w", encoding="utf-8") as out:
        reader = csv.reader(rows)
        header = ",".join(next(reader))
        for row in reader:
            data = base64.b64encode(f"{header}\n{','.join(row)}\n".encode()).decode()
            body = {
                "inputs": [
                    {"name": "pr", "type": "csv", "data": data},
                    {"name": "ar", "type": "bool", "data": False},
                    {"name": "ad", "type": "bool", "data": False},
                    {"name": "nc", "type": "bool", "data": False},
                    {"name": "nr", "type": "bool", "data": True},
                ]
            }
            answer = requests.post(
                url,
                json=body,
                headers={"x-api-key": api_key, "content-type": "application/json; charset=utf-8"},
                timeout=30,
            )
            answer.raise_for_status()
            for item in answer.json()["outputs"]:
                if item["name"] == "prediction_valid.csv":
                    out.write(base64.b64decode(item["data"]).decode())
            scored += 1
    return scored


def worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=f"{MODULE} worker")
    parser.add_argument("variant", choices=("operator", "vendor"))
    parser.add_argument("--classifier-id", required=True)
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    options = parser.parse_args(argv)

    if options.variant == "operator":
        from airflow_provider_predone.operators.predone import PredictionOneBatchPredictOperator

        operator = PredictionOneBatchPredictOperator(
            task_id="score",
            classifier_id=options.classifier_id,
            input_data=str(options.input),
            output_data=str(options.output),
            concurrency=options.concurrency,
        )
        operator.hook.connection_info  # resolved before the measurement  # noqa: B018

        from airflow_provider_predone import scoring

        counted: list[Any] = []
        score_rows = scoring.BatchScorer.run

        def counting(self: scoring.BatchScorer, source: Any, output: Any, reasons: Any | None) -> scoring.ScoreCounts:
            counts = score_rows(self, source, output, reasons)
            counted.append(counts)
            return counts

        scoring.BatchScorer.run = counting  # type: ignore[method-assign]  # the hedges it counted

        def score() -> int:
            return int(operator.execute({})["rows_scored"])  # type: ignore[arg-type]

        def hedges() -> int:
            return int(getattr(counted[-1], "hedges", 0)) if counted else 0

    else:
        from airflow_provider_predone.hooks.predone import PredictionOneHook

        prediction_api = PredictionOneHook().get_prediction_api(options.classifier_id)

        def score() -> int:
            return vendor_loop(prediction_api.url, prediction_api.api_key, options.input, options.output)

        def hedges() -> int:
            return 0

    rss_before = common.rss_kib()
    peak_reset = common.reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    rows = score()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    common.emit(
        {
            "rows": rows,
            "seconds": seconds,
            "rows_per_second": rows / seconds,
            "cpu_per_row": cpu / max(rows, 1),
            "rss_growth_mib": (common.peak_rss_kib() - rss_before) / 1024,
            "peak_reset": peak_reset,
            "hedges": hedges(),
        }
    )


# --- the benchmark -------------------------------------------------------------------------------


@contextmanager
def separate_cores(emulator_pid: int) -> Iterator[None]:
    """The emulator on the last CPU; this process, and the scoring processes it starts, on the
    others until the block ends.

    The vendor's service does not run on the client's machine. Sharing two cores, the emulator
    and the client took turns on both and queued behind each other (c=32 lost about 6 % of its
    rate); on one core each, the client's CPU is its own, as against the real service. Nothing
    is changed on a machine with a single CPU.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield
        return
    os.sched_setaffinity(emulator_pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    try:
        yield
    finally:
        os.sched_setaffinity(0, set(cpus))


def run(settings: Settings, log: Callable[[str], None] = print) -> str:
    """Run P4 and answer its summary line."""
    from airflow_provider_predone.emulator import EmulatorProcess

    with (
        tempfile.TemporaryDirectory(prefix="predone-bench-p4-") as scratch,
        EmulatorProcess(
            job_seconds=1, build_seconds=0.5, inference_latency_ms=LATENCY_MS, test_controls=True
        ) as emulator,
        separate_cores(emulator.pid),
    ):
        folder = Path(scratch)
        common.use_emulator(emulator.url, max_retries=MAX_RETRIES)
        classifier_id = deploy(folder)
        inputs = {
            n: write_rows(folder / f"score_{n}.csv", n, seed=2, with_target=False)
            for n in {settings.rows, settings.small_rows, settings.vendor_rows, settings.default_rows}
        }
        output = folder / "predictions.csv"

        def measure(
            variant: str, rows: int, concurrency: int = DEFAULT_CONCURRENCY, faults: str = ""
        ) -> dict[str, Any]:
            if faults:
                rate, kinds = (SLOW_RATE, "slow") if faults == "slow" else (MIX_RATE, "")
                emulator.configure(
                    fault_rate=rate, fault_kinds=kinds, fault_seed=clean_seed(rate), slow_seconds=SLOW_SECONDS
                )
            emulator_cpu = common.process_cpu_seconds(emulator.pid)
            result = common.run_worker(
                MODULE,
                [
                    variant,
                    f"--classifier-id={classifier_id}",
                    f"--input={inputs[rows]}",
                    f"--output={output}",
                    f"--concurrency={concurrency}",
                ],
            )
            result["emulator_cpu_per_row"] = (common.process_cpu_seconds(emulator.pid) - emulator_cpu) / rows
            if faults:
                emulator.configure(fault_rate=0.0)
            if result["rows"] != rows:
                raise RuntimeError(f"{variant} scored {result['rows']} of {rows} rows")
            output.unlink()
            label = f"operator c={concurrency}" if variant == "operator" else variant
            label += {"slow": " slow", "mix": " faults"}.get(faults, "")
            log(
                f"P4 {label:15} {rows:6} rows: {result['rows_per_second']:7.1f} rows/s, "
                f"{result['cpu_per_row'] * 1e6:.0f} us CPU/row (emulator {result['emulator_cpu_per_row'] * 1e6:.0f}), "
                f"peak RSS growth {result['rss_growth_mib']:.1f} MiB"
                + (f", {result['hedges']} hedges" if faults else "")
            )
            return result

        ours: list[dict[str, Any]] = []
        small: list[dict[str, Any]] = []
        default: list[dict[str, Any]] = []
        vendor: list[dict[str, Any]] = []
        single: list[dict[str, Any]] = []
        faulted: dict[str, list[dict[str, Any]]] = {"slow": [], "mix": [], "mix_big": [], "mix_small": []}
        for _ in range(settings.repetitions):
            single.append(measure("operator", settings.vendor_rows, 1))
            vendor.append(measure("vendor", settings.vendor_rows))
            ours.append(measure("operator", settings.rows, settings.concurrency))
            small.append(measure("operator", settings.small_rows, settings.concurrency))
            default.append(measure("operator", settings.default_rows, DEFAULT_CONCURRENCY))
            faulted["slow"].append(measure("operator", settings.default_rows, DEFAULT_CONCURRENCY, "slow"))
            faulted["mix"].append(measure("operator", settings.default_rows, DEFAULT_CONCURRENCY, "mix"))
            faulted["mix_big"].append(measure("operator", settings.rows, settings.concurrency, "mix"))
            faulted["mix_small"].append(measure("operator", settings.small_rows, settings.concurrency, "mix"))
    return (
        summarise(settings, ours, small, default, vendor, single) + " " + summarise_faults(settings, default, faulted)
    )


def clean_seed(rate: float) -> int:
    """A fault seed whose first draws are no fault: a run's set-up requests are not measured."""
    seed = 1
    while any(value < rate for value in _draws(seed, SETUP_REQUESTS)):
        seed += 1
    return seed


def _draws(seed: int, count: int) -> list[float]:
    generator = random.Random(seed)  # the emulator's: one draw per request (docs/emulator.md, Faults)
    return [generator.random() for _ in range(count)]


def summarise_faults(
    settings: Settings, default: list[dict[str, Any]], faulted: dict[str, list[dict[str, Any]]]
) -> str:
    """The part of the summary line measured under faults."""
    slow = common.median(
        f["rows_per_second"] / d["rows_per_second"] for f, d in zip(faulted["slow"], default, strict=True)
    )
    mix = common.median(
        f["rows_per_second"] / d["rows_per_second"] for f, d in zip(faulted["mix"], default, strict=True)
    )
    at_c8 = faulted["slow"] + faulted["mix"]
    hedges = sum(r["hedges"] for r in at_c8) / sum(r["rows"] for r in at_c8)
    big_mib = common.median(r["rss_growth_mib"] for r in faulted["mix_big"])
    small_mib = common.median(r["rss_growth_mib"] for r in faulted["mix_small"])
    constant = big_mib - small_mib <= FLAT_MIB
    per_repetition = "/".join(
        f"{b['rss_growth_mib']:.1f}-{s['rss_growth_mib']:.1f}"
        for b, s in zip(faulted["mix_big"], faulted["mix_small"], strict=True)
    )
    return (
        f"| faults at c={DEFAULT_CONCURRENCY}, {settings.default_rows} rows, of the fault-free rows/s: "
        f"{SLOW_RATE:.0%} slow ({SLOW_SECONDS:.0f} s) {slow:.2f} "
        f"({common.median(r['rows_per_second'] for r in faulted['slow']):.0f} rows/s; "
        f"goal>={GOAL_SLOW}, {common.verdict(slow >= GOAL_SLOW)}), "
        f"{MIX_RATE:.0%} mix {mix:.2f} ({common.median(r['rows_per_second'] for r in faulted['mix']):.0f} rows/s; "
        f"goal>={GOAL_MIX}, {common.verdict(mix >= GOAL_MIX)}) | "
        f"hedges {hedges:.1%} of rows (goal<={GOAL_HEDGES:.0%}, {common.verdict(hedges <= GOAL_HEDGES)}) | "
        f"rss_growth under the mix at c={settings.concurrency} {settings.rows} rows={big_mib:.1f}MiB "
        f"vs {settings.small_rows} rows={small_mib:.1f}MiB (goal: at most {FLAT_MIB:g} MiB more, "
        f"{common.verdict(constant)}; per repetition {per_repetition})"
    )


def summarise(
    settings: Settings,
    ours: list[dict[str, Any]],
    small: list[dict[str, Any]],
    default: list[dict[str, Any]],
    vendor: list[dict[str, Any]],
    single: list[dict[str, Any]],
) -> str:
    # Ceiling of c in flight: c / latency, the latency from the concurrency=1 run of the same repetition.
    ceilings = {
        concurrency: common.median(
            run["rows_per_second"] / (concurrency * one["rows_per_second"])
            for run, one in zip(runs, single, strict=True)
        )
        for concurrency, runs in ((DEFAULT_CONCURRENCY, default), (settings.concurrency, ours))
    }
    latency_ms = common.median(1000 / r["rows_per_second"] for r in single)
    of_ceiling = " ".join(
        f"c={c}: {fraction:.2f} of ceiling {c * 1000 / latency_ms:.0f} rows/s "
        f"(goal>={GOAL_OF_CEILING}, {common.verdict(fraction >= GOAL_OF_CEILING)})"
        for c, fraction in sorted(ceilings.items())
    )
    rate = common.median(r["rows_per_second"] for r in ours)
    default_rate = common.median(r["rows_per_second"] for r in default)
    vendor_rate = common.median(r["rows_per_second"] for r in vendor)
    # Per repetition, ours against the vendor loop run just before it; the median of those.
    speedups = [o["rows_per_second"] / v["rows_per_second"] for o, v in zip(ours, vendor, strict=True)]
    default_speedups = [d["rows_per_second"] / v["rows_per_second"] for d, v in zip(default, vendor, strict=True)]
    speedup, default_speedup = common.median(speedups), common.median(default_speedups)
    big_mib = common.median(r["rss_growth_mib"] for r in ours)
    small_mib = common.median(r["rss_growth_mib"] for r in small)
    constant = big_mib <= small_mib * 1.5 + 8
    return (
        f"{ID} latency={LATENCY_MS}ms added, {latency_ms:.1f}ms measured (concurrency 1) | {of_ceiling} | "
        f"rows/s: operator(c={settings.concurrency}, {settings.rows} rows)={rate:.0f} "
        f"vendor_loop({settings.vendor_rows} rows)={vendor_rate:.1f} | "
        f"speedup={speedup:.1f}x (goal>=10, {common.verdict(speedup >= GOAL)}) "
        f"default c={DEFAULT_CONCURRENCY}: {default_rate:.0f} rows/s = {default_speedup:.1f}x | "
        f"rss_growth {settings.rows} rows={big_mib:.1f}MiB vs {settings.small_rows} rows={small_mib:.1f}MiB "
        f"({common.verdict(constant)}) [per repetition speedup {'/'.join(f'{r:.1f}' for r in speedups)}; "
        f"medians of {settings.repetitions}]"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        common.prepare_environment()
        worker(sys.argv[2:])
    else:
        raise SystemExit(f"usage: python -m benchmarks {ID}")
