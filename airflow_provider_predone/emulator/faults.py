"""Deterministic transient faults (see "Faults" in docs/emulator.md)."""

from __future__ import annotations

import random

FAULT_KINDS: tuple[str, ...] = ("http_500", "http_502", "http_503", "http_429", "reset", "slow", "lost")


class FaultInjector:
    """Draws the fault (or none) of each vendor request from one seeded generator.

    Exactly one draw is made per request, whatever the rate, so the sequence of kinds for a
    given seed does not depend on the rate changing mid-run, only on arrival order.
    """

    def __init__(self, seed: int) -> None:
        self.counts = dict.fromkeys(FAULT_KINDS, 0)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the sequence of draws (the counts go on)."""
        self._random = random.Random(seed)

    def draw(self, rate: float, kinds: tuple[str, ...] = FAULT_KINDS) -> str | None:
        """The fault of the next request, or ``None``.

        :param rate: the probability of a fault.
        :param kinds: the kinds to draw from (all of them by default).
        """
        value = self._random.random()
        if value >= rate:
            return None
        # value / rate is uniform on [0, 1) given a fault: it picks the kind uniformly.
        kind = kinds[min(int(value / rate * len(kinds)), len(kinds) - 1)]
        self.counts[kind] += 1
        return kind
