"""
Row pushes to an AiTEMS interval service deliver every row exactly once under faults.

AiTEMS keeps rows sent twice twice and has no read-back, so exactly once rests on two rules of
:class:`~airflow_provider_predone.operators.aitems.AitemsPushRowsOperator`: a batch is resent only
when an answer refused it (429, 500, 503: nothing was added), and a batch whose answer never came
(a reset or lost connection, an answer later than the request timeout, a worker killed while it
was sent) is *in doubt*: the task stops naming it, and resumes after the user chose
``on_batch_in_doubt``. Here the test plays that user, who knows from the emulator's count whether
the batch landed (``skip`` if it did, ``resend`` if not); the tests then prove no batch was ever
sent twice by the operator and none was lost:

- every fault kind of the emulator on 25 % of the requests (500/502/503, 429 with Retry-After,
  resets, lost answers, answers later than the request timeout), several seeds;
- a worker killed (SIGKILL) at a random moment while it pushes, several times, the retry record
  kept where Airflow keeps it (here a JSON file), as a retried task finds it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aitems_interval import IntervalService, interval_service, pushed, task_context
from helpers import aitems_connection
from object_storage import ObjectStorageServer

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import ApiError, RowsInDoubtError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.operators.aitems import AitemsPushRowsOperator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROWS = 600
BATCH = 20
SEEDS = int(os.environ.get("PREDONE_PUSH_SEEDS", "4"))
RECORD = "aitems_row_push"


@pytest.fixture
def service(
    connections: EmulatorProcess,
    object_storage_server: ObjectStorageServer,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> IntervalService:
    created = interval_service(AitemsHook(), bucket, tmp_path)
    # A request timeout of 1 s: a 'slow' fault (2 s) is an answer that comes too late, in doubt.
    extra = {"retry_wait_seconds": 0.05, "retry_max_wait_seconds": 0.5, "timeout": 1.0}
    extra["object_storage_endpoint"] = object_storage_server.endpoint
    monkeypatch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(connections.url, **extra))
    return created


def rows_file(path: Path, count: int, tag: str) -> Path:
    rows = ({"USER_ID": f"u{n % 3 + 1}", "ITEM_ID": f"i{n % 3 + 1}", "TIMESTAMP": n, "TAG": tag} for n in range(count))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def landed(batches: int, record: dict[str, Any]) -> bool:
    """What the user answers for the in-doubt batch: was it added? (The emulator counted ``batches``.)"""
    assert batches in (record["acknowledged"], record["acknowledged"] + 1)  # it was never sent twice
    return batches > record["acknowledged"]


def test_every_row_once_under_the_fault_mix(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path, record_property: Any
) -> None:
    dataset = service.dataset_ids["interaction"]
    tries = in_doubt = 0
    for seed in range(SEEDS):
        data = rows_file(tmp_path / f"rows-{seed}.jsonl", ROWS, f"seed{seed}")
        before = len(pushed(connections.url, service.service_id, dataset)["batches"])
        operator = AitemsPushRowsOperator(
            task_id=f"push{seed}",
            service_id=service.service_id,
            dataset_id=dataset,
            dataset_type="interaction",
            data=data,
            batch_size=BATCH,
        )
        context = task_context(f"push{seed}")
        connections.configure(fault_rate=0.25, fault_seed=seed, slow_seconds=2.0)
        for _ in range(100):  # the task's tries (Airflow's retries, or the user clearing it)
            tries += 1
            try:
                operator.execute(context)
                break
            except RowsInDoubtError:
                in_doubt += 1
                record = context["task_state_store"][RECORD]
                batches = len(pushed(connections.url, service.service_id, dataset)["batches"]) - before
                operator.batch_in_doubt_landed = landed(batches, record)
            except ApiError:  # refused by answers past the hook's retries: nothing in doubt, a retry resumes
                assert context["task_state_store"][RECORD]["in_doubt"] is None
        else:
            pytest.fail(f"seed {seed}: the push did not finish in 100 tries")
        connections.configure(fault_rate=0.0)
        received = pushed(connections.url, service.service_id, dataset)
        assert received["repeated_count"] == 0, received["repeated_rows"]
        assert sum(received["batches"][before:]) == ROWS
    faults = connections.state()["faults"]
    summary = {"seeds": SEEDS, "tries": tries, "in_doubt": in_doubt, "faults": faults}
    record_property("summary", json.dumps(summary))
    print(json.dumps(summary))
    assert in_doubt > 0  # the mix did leave batches in doubt
    assert received["distinct_rows"] == ROWS * SEEDS


_WORKER = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from aitems_interval import TaskInstance
from airflow_provider_predone.operators.aitems import AitemsPushRowsOperator

class FileStore(dict):
    def __init__(self, path):
        self.path = Path(path)
        super().__init__(json.loads(self.path.read_text()) if self.path.exists() else {{}})
    def set(self, name, value):
        self[name] = value
        partial = self.path.with_suffix(".part")
        partial.write_text(json.dumps(dict(self)))
        partial.replace(self.path)
    def delete(self, name):
        self.pop(name, None)
        self.path.write_text(json.dumps(dict(self)))

ti = TaskInstance("push")
operator = AitemsPushRowsOperator(task_id="push", service_id={service!r}, dataset_id={dataset!r},
    dataset_type="interaction", data={data!r}, batch_size={batch}, batch_in_doubt_landed=json.loads(sys.argv[1]))
print(json.dumps(operator.execute({{"ti": ti, "task_instance": ti, "task_state_store": FileStore({store!r})}})))
"""


def test_a_killed_worker_resumes_without_duplicates(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path
) -> None:
    dataset = service.dataset_ids["interaction"]
    data = rows_file(tmp_path / "rows.jsonl", 400, "killed")
    store = tmp_path / "task_state_store.json"
    script = _WORKER.format(
        tests=str(Path(__file__).resolve().parent.parent),
        service=service.service_id,
        dataset=dataset,
        data=str(data),
        batch=10,
        store=str(store),
    )
    # Every answer held 0.2 s after the rows were added: a kill then leaves a batch in doubt.
    connections.configure(fault_rate=1.0, fault_kinds="slow", slow_seconds=0.2)
    chooser = random.Random(7)
    answer, kills = None, 0
    for _ in range(30):
        worker = subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(answer)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        start = len(pushed(connections.url, service.service_id, dataset)["batches"])
        wanted = start + chooser.randint(1, 6)
        deadline = time.monotonic() + 120
        while worker.poll() is None and time.monotonic() < deadline:
            if len(pushed(connections.url, service.service_id, dataset)["batches"]) >= wanted and kills < 6:
                time.sleep(chooser.random() * 0.2)
                worker.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        out, err = worker.communicate(timeout=120)
        if worker.returncode == 0:
            result = json.loads(out.decode().strip().splitlines()[-1])
            break
        time.sleep(0.5)  # a push the killed worker had sent is handled by now
        record = json.loads(store.read_text())[RECORD]
        received = pushed(connections.url, service.service_id, dataset)
        answer = None if record["in_doubt"] is None else landed(len(received["batches"]), record)
        assert worker.returncode == -signal.SIGKILL or b"RowsInDoubtError" in err, err.decode()[-2000:]
    else:
        pytest.fail("the push did not finish after 30 tries")
    connections.configure(fault_rate=0.0)
    received = pushed(connections.url, service.service_id, dataset)
    assert kills > 0
    assert (received["rows"], received["distinct_rows"], received["repeated_count"]) == (400, 400, 0)
    assert result["batches"] == 40
