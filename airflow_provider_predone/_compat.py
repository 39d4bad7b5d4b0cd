"""Differences between the Airflow 3.x releases we support, in one place."""

from __future__ import annotations

from typing import Any

try:  # Airflow 3.1+: tells the supervisor without a blocking call from the event loop
    from airflow.sdk.log import amask_secret as amask_secret
except ImportError:  # Airflow 3.0

    async def amask_secret(secret: Any, name: str | None = None) -> None:  # type: ignore[misc]
        """Mask ``secret`` from async code: register it with this process's masker directly.

        The synchronous ``mask_secret`` may block on a supervisor round-trip from inside the
        triggerer's event loop; the masker itself needs no I/O.
        """
        from airflow.sdk.execution_time.secrets_masker import _secrets_masker

        _secrets_masker().add_mask(secret, name)
