"""Local emulator of the Prediction One / Easy Predictive Analytics and NAVER Cloud AiTEMS APIs.

See docs/emulator.md for the contract. ``EmulatorProcess`` runs it as a real server process,
``serve_in_thread`` in a background thread of the current process.
"""

from __future__ import annotations

from .app import serve_in_thread
from .config import EmulatorConfig
from .process import EmulatorProcess

__all__ = ["EmulatorConfig", "EmulatorProcess", "serve_in_thread"]
