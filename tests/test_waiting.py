"""The waiting policy and the trigger-event rules: one module, cheap to import at DAG parse."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

from airflow_provider_predone import waiting
from airflow_provider_predone.operators import base as operators_base
from airflow_provider_predone.triggers import base as triggers_base


def test_the_waiting_module_imports_no_http_client_and_no_trigger_machinery() -> None:
    probe = (
        "import json, sys; import airflow_provider_predone.waiting; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiohttp', 'requests', 'urllib3', 'yarl') or m.startswith(('airflow.triggers', "
        "'airflow_provider_predone.triggers', 'airflow_provider_predone.hooks')))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == []


def test_the_old_homes_still_export_the_same_objects() -> None:
    for name in ("default_deferrable", "first_poll_at", "MIN_FIRST_POLL_DELAY", "positive_seconds", "status_list"):
        assert getattr(operators_base, name) is getattr(waiting, name)
    for name in ("validate_event", "sensor_result", "OUTCOMES"):
        assert getattr(triggers_base, name) is getattr(waiting, name)


def test_no_module_of_the_package_imports_the_rules_from_their_old_homes() -> None:
    moved = ("validate_event", "sensor_result", "default_deferrable", "first_poll_at", "status_list")
    for path in (REPO / "airflow_provider_predone").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "import" in line and ("triggers.base import" in line or "operators.base import" in line):
                assert not any(name in line for name in moved), f"{path}: {line.strip()}"
