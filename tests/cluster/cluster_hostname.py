"""``[core] hostname_callable`` of every cluster component: its name (``triggerer-1``, ``worker-2`` ...).

The job table then tells the two triggerers apart, and a task instance names its worker.
Imported by the Airflow processes, so it imports nothing from the tests.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("PREDONE_CLUSTER_COMPONENT") or socket.getfqdn()
