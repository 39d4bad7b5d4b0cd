"""
``python -m benchmarks [P1 P2 P3 P4 P5] [--quick]`` (``make bench`` runs them all).

Progress goes to stderr; stdout gets exactly one summary line per benchmark, starting with
its id, holding the ratios against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks import _common as common

BENCHMARKS = ("P1", "P2", "P3", "P4", "P5")
DESCRIPTIONS = {
    "P1": "2,000 status triggers in one event loop vs a bare shared session and the per-poll session pattern",
    "P2": "1 GiB upload and download through the hook vs curl",
    "P3": "DAG-parse cost: importing airflow.sdk alone vs with our operator and sensor modules",
    "P4": "batch scoring with 20 ms inference latency vs the vendor sample's sequential loop",
    "P5": "AiTEMS recommendations out, 20 ms lookup latency, at 8 and 32 in flight vs the latency's ceiling",
}


def _progress(line: str) -> None:
    print(f"# {line}", file=sys.stderr, flush=True)


def _module(benchmark: str) -> Any:
    import importlib

    names = {
        "P1": "p1_trigger_scale",
        "P2": "p2_streaming",
        "P3": "p3_parse_cost",
        "P4": "p4_scoring",
        "P5": "p5_recommendations",
    }
    return importlib.import_module(f"benchmarks.{names[benchmark]}")


def run_one(benchmark: str, quick: bool, log: Callable[[str], None] = _progress) -> str:
    """Run one benchmark (default or quick settings) and answer its summary line."""
    module = _module(benchmark)
    settings = module.Settings.quick() if quick else module.Settings()
    return str(module.run(settings, log=log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of airflow-provider-predone against baselines measured in the same run.",
        epilog="\n".join(f"{b}: {d}" for b, d in DESCRIPTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("benchmarks", nargs="*", metavar="ID", help="P1 P2 P3 P4 P5 (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions (a smoke run)")
    options = parser.parse_args(argv)
    chosen = [b.upper() for b in options.benchmarks] or list(BENCHMARKS)
    unknown = [b for b in chosen if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")

    common.prepare_environment()
    started = time.perf_counter()
    failed = False
    for benchmark in chosen:
        _progress(f"{benchmark}: {DESCRIPTIONS[benchmark]}{' (quick)' if options.quick else ''}")
        began = time.perf_counter()
        try:
            line = run_one(benchmark, options.quick)
        except Exception as exc:
            traceback.print_exc()
            line = f"{benchmark} ERROR {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            failed = True
        print(line, flush=True)
        _progress(f"{benchmark}: {time.perf_counter() - began:.0f} s")
    _progress(f"all done in {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
