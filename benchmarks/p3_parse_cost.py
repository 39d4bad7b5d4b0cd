"""
P3 — DAG-parse cost.

A DAG file that uses our operators imports ``airflow.sdk`` and our operator and sensor
modules at every parse. In fresh interpreters, interleaved, this times the import of
``airflow.sdk`` alone against ``airflow.sdk`` plus every operator and sensor module of ours,
and lists the top-level packages our modules add to ``sys.modules`` (none of ``aiohttp``,
``requests`` & co. may be among them: the HTTP clients are imported only when a task runs).

The time is measured inside each interpreter (``perf_counter`` around the imports, so the
interpreter's own start-up, identical in both, does not dilute the ratio); the wall time of
the whole process is reported too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import _common as common

ID = "P3"
GOAL = 1.10
OUR_MODULES = (
    "airflow_provider_predone.operators.predone",
    "airflow_provider_predone.operators.aitems",
    "airflow_provider_predone.sensors.predone",
    "airflow_provider_predone.sensors.aitems",
)
#: Modules that must not be imported when a DAG file is parsed (named in the summary if they are).
HEAVY = ("aiohttp", "requests", "urllib3", "yarl", "multidict", "httpx", "pandas", "numpy", "boto3", "botocore")

# Run with ``python -c``: nothing but this code is imported before the timed imports.
_PROBE = """
import importlib, json, sys, time
modules = sys.argv[1:]
started = time.perf_counter()
import airflow.sdk
sdk_done = time.perf_counter()
before = set(sys.modules)
for name in modules:
    importlib.import_module(name)
finished = time.perf_counter()
added = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"sdk": sdk_done - started, "total": finished - started, "added": added,
                  "present": sorted(m for m in sys.modules if "." not in m)}))
"""


@dataclass(frozen=True)
class Settings:
    runs: int = 15
    warmups: int = 2  # probes that fill the bytecode cache first

    @classmethod
    def quick(cls) -> Settings:
        return cls(runs=3)


def probe(modules: tuple[str, ...], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One fresh interpreter importing ``airflow.sdk`` then ``modules``."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, check=False, cwd=common.REPO, env=env
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"import probe failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def bytecode_cached(pycache: str) -> dict[str, str]:
    """The environment of the probes: bytecode cached for every module, ours included.

    An installed package has its ``.pyc`` files (pip compiles them; a checkout writes them
    at first import). Where ``PYTHONDONTWRITEBYTECODE`` is set, as in some CI images, our
    modules would be compiled from source at every probe while Airflow's come precompiled,
    so the probes write and read all bytecode under one private ``PYTHONPYCACHEPREFIX``.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def run(settings: Settings, log: Callable[[str], None] = print) -> str:
    """Run P3 and answer its summary line."""
    alone: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="predone-bench-p3-pycache-") as pycache:
        env = bytecode_cached(pycache)
        for _ in range(settings.warmups):  # fill the bytecode cache and warm the file system cache
            probe(OUR_MODULES, env)
        for i in range(settings.runs):
            # Interleaved, alternating which goes first, so drifts of the machine hit both alike.
            pair = [("alone", ()), ("ours", OUR_MODULES)]
            for name, modules in pair if i % 2 == 0 else reversed(pair):
                (alone if name == "alone" else ours).append(probe(modules, env))
    sdk_time = common.median(r["sdk"] for r in alone)
    our_time = common.median(r["total"] for r in ours)
    ratio = our_time / sdk_time
    wall_ratio = common.median(r["wall"] for r in ours) / common.median(r["wall"] for r in alone)
    added = sorted({m for r in ours for m in r["added"]} - {"airflow_provider_predone"})
    heavy = sorted(m for m in HEAVY if any(m in r["added"] for r in ours))
    already = sorted(m for m in HEAVY if m in alone[0]["present"])
    log(
        f"P3: import airflow.sdk {sdk_time * 1000:.0f} ms, + our modules {our_time * 1000:.0f} ms "
        f"(median of {settings.runs} each); packages our modules add: {added or 'none'}; "
        f"heavy modules airflow.sdk already imports: {already or 'none'}"
    )
    return (
        f"{ID} import ms: airflow.sdk={sdk_time * 1000:.0f} sdk+ours={our_time * 1000:.0f} | "
        f"ratio={ratio:.3f}x (goal<={GOAL}, {common.verdict(ratio <= GOAL)}) "
        f"heavy_added={','.join(heavy) or 'none'} ({common.verdict(not heavy)}) "
        f"[process wall ratio {wall_ratio:.3f}x; added packages: {','.join(added) or 'none'}; "
        f"median of {settings.runs} interleaved runs each]"
    )
