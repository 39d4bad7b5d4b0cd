"""What the vendor APIs of the emulator share: settings, counters, job clocks and the executor."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from .config import EmulatorConfig
from .faults import FaultInjector

T = TypeVar("T")

# Share of a job's duration spent in its first ("waiting"/"requesting") status.
FIRST_STAGE_SHARE = 0.2


@dataclass
class Counters:
    """The counters of ``GET /_emulator/state`` (faults are counted by the injector)."""

    uploads: int = 0
    bytes_uploaded: int = 0
    trainings_started: int = 0
    retrain_jobs_started: int = 0
    model_switches: int = 0
    classifiers: int = 0
    predictions: int = 0
    # The most inference requests in the service at once (a client's concurrency, seen from here).
    max_inferences_in_flight: int = 0
    aitems_trainings_started: int = 0
    api_keys_issued: int = 0
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Timeline:
    """The wall-clock course of a job, fixed when it starts (later config changes do not apply).

    Stages: 0 for the first 20 % of the duration, 1 until the end, 2 once it is over.
    """

    started: float
    seconds: float

    def stage(self, now: float) -> int:
        elapsed = now - self.started
        if elapsed >= self.seconds:
            return 2
        return 0 if elapsed < FIRST_STAGE_SHARE * self.seconds else 1

    def ended_by(self, now: float) -> Timeline:
        """This course cut short: over at ``now`` at the latest (test support, ``finish-jobs``)."""
        return Timeline(self.started, min(self.seconds, now - self.started))

    def stage_started(self, stage: int) -> float:
        return self.started + (0.0, FIRST_STAGE_SHARE * self.seconds, self.seconds)[stage]


def iso_utc(timestamp: float) -> str:
    """``2026-11-23T14:00:00Z``: the timestamp format of the Prediction One answers."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Runtime:
    """The emulator's shared mutable context.

    :param config: the settings; runtime changes are made on this object.
    :param executor: where parsing and training run, off the event loop.
    """

    def __init__(self, config: EmulatorConfig, executor: ThreadPoolExecutor) -> None:
        self.config = config
        self.executor = executor
        self.counters = Counters()
        self.faults = FaultInjector(config.fault_seed)
        #: requests held right now by a test-support hold (not reset: they finish on their own)
        self.held_requests = 0

    def reset(self) -> None:
        self.counters = Counters()
        self.faults = FaultInjector(self.config.fault_seed)

    def submit(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``function(*args)`` in the executor; must be called from the event loop."""
        return asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    @staticmethod
    def now() -> float:
        return time.time()
