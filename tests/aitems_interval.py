"""An AiTEMS interval service ready to learn, built through the real API (object storage, schemas,
datasets, links), and what the emulator received, for the interval tests.

Importable as ``aitems_interval`` (the tests folder is on ``sys.path``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.protocol import aitems as api

#: a few rows of each dataset type, as CSV
FILES = {
    "user": "USER_ID,AGE\nu1,31\nu2,45\nu3,27\n",
    "item": "ITEM_ID,CATEGORY\ni1,books\ni2,games\ni3,music\n",
    "interaction": "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1764547200\nu2,i2,1764547260\nu3,i1,1764547320\n",
}


@dataclass(frozen=True)
class IntervalService:
    """An interval service linked to its three datasets (``learnable``)."""

    service_id: str
    dataset_ids: dict[str, str]


def wait_until(what: str, probe: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def interval_service(hook: AitemsHook, bucket: str, folder: Path, name: str = "shop_interval") -> IntervalService:
    """Upload the three files, create their schemas and datasets, create an interval service and link them."""
    dataset_ids = {}
    for kind, text in FILES.items():
        path = folder / f"{kind}.csv"
        path.write_text(text)
        hook.object_storage.upload(path, bucket, f"{name}/{kind}.csv")
        header = text.splitlines()[0].split(",")
        schema = f"{name[:12]}_{kind[:5]}"
        hook.create_schema(kind, schema, api.fields_from_header(kind, header, path.name))
        dataset = hook.create_dataset(kind, f"{name}-{kind}", schema, bucket, f"{name}/{kind}.csv")
        dataset_ids[kind] = str(dataset["datasetId"])
    for kind, dataset_id in dataset_ids.items():
        wait_until(f"the {kind} dataset", lambda d=dataset_id: hook.get_dataset(d)["status"] == "enable")
    service_id = str(hook.create_service(name, "interval")["serviceId"])
    hook.link_datasets(service_id, dataset_ids)
    wait_until("a learnable service", lambda: hook.get_service(service_id)["status"] == "learnable")
    return IntervalService(service_id, dataset_ids)


def pushed(emulator_url: str, service_id: str, dataset_id: str) -> dict[str, Any]:
    """What the emulator received for a dataset: ``batches`` (rows per push), ``rows``, ``repeated_count``."""
    url = f"{emulator_url}/_emulator/aitems/pushes?service_id={service_id}&dataset_id={dataset_id}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as answer:
        result: dict[str, Any] = json.loads(answer.read())
        return result


class TaskInstance:
    """What the operators use of a task instance: the ids that name its retry record."""

    def __init__(self, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "aitems_interval", f"run-{task_id}", task_id, -1


class TaskStateStore(dict[str, Any]):
    """Airflow 3.3's ``task_state_store``: kept across a task's tries, as Airflow keeps it."""

    def set(self, name: str, value: Any) -> None:
        self[name] = json.loads(json.dumps(value))  # stored as JSON, as Airflow stores it

    def delete(self, name: str) -> None:
        self.pop(name, None)


def task_context(task_id: str) -> dict[str, Any]:
    """A task's context for ``execute``: its instance and retry record (kept across tries)."""
    ti = TaskInstance(task_id)
    return {"ti": ti, "task_instance": ti, "task_state_store": TaskStateStore()}


def interaction_rows(count: int) -> str:
    """``count`` distinct interaction rows as CSV."""
    lines = [f"u{n % 3 + 1},i{n % 3 + 1},{1764547200 + n}" for n in range(count)]
    return "USER_ID,ITEM_ID,TIMESTAMP\n" + "\n".join(lines) + "\n"
