"""
AitemsScheduleOperator, AitemsPushRowsOperator and AitemsUpdateSensor against the emulator and the
object storage server.

The push operator runs in this process (``execute`` with a small task context whose retry record
is kept across tries, as Airflow keeps it), over HTTP to the emulator; one DAG runs the whole
interval cycle with ``dag.test()`` (deferred waits included).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from pathlib import Path

import pytest
from aitems_interval import IntervalService, interaction_rows, interval_service, pushed, task_context
from helpers import DAGS, run_dag

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import InvalidInputError, RowsInDoubtError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.operators.aitems import AitemsPushRowsOperator, AitemsScheduleOperator
from airflow_provider_predone.triggers.aitems import AitemsUpdateTrigger


@pytest.fixture
def service(connections: EmulatorProcess, bucket: str, tmp_path: Path) -> IntervalService:
    return interval_service(AitemsHook(), bucket, tmp_path)


def push(service: IntervalService, data: object, **options: object) -> AitemsPushRowsOperator:
    arguments = {"dataset_type": "interaction", **options}
    return AitemsPushRowsOperator(
        task_id="push",
        service_id=service.service_id,
        dataset_id=service.dataset_ids["interaction"],
        data=data,
        **arguments,
    )


def jsonl(path: Path, count: int) -> Path:
    """``count`` distinct interaction rows as JSON Lines (no schema to read: the pushes are the only requests)."""
    rows = ({"USER_ID": f"u{n % 3 + 1}", "ITEM_ID": f"i{n % 3 + 1}", "TIMESTAMP": 1764547200 + n} for n in range(count))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_rows_are_pushed_in_batches(connections: EmulatorProcess, service: IntervalService, tmp_path: Path) -> None:
    from airflow.sdk import AssetAlias
    from airflow.sdk.execution_time.context import OutletEventAccessors

    data = tmp_path / "new.csv"
    data.write_text(interaction_rows(25))
    context = {**task_context("push"), "outlet_events": OutletEventAccessors()}
    operator = push(service, data, batch_size=10)
    result = operator.execute(context)
    assert result == {
        "service_id": service.service_id,
        "dataset_id": service.dataset_ids["interaction"],
        "dataset_type": "interaction",
        "rows": 25,
        "batches": 3,
    }
    received = pushed(connections.url, service.service_id, service.dataset_ids["interaction"])
    assert (received["batches"], received["repeated_count"]) == ([10, 10, 5], 0)
    assert context["task_state_store"] == {}  # the record goes once the task succeeds
    (event,) = context["outlet_events"][AssetAlias(name="aitems_service_updates")].asset_alias_events
    assert event.dest_asset_key.uri == f"aitems://{service.service_id}/service"
    assert (event.extra["event"], event.extra["rows"]) == ("rows_pushed", 25)
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", str(data.resolve()))]
    assert [d.name for d in lineage.inputs[0].facets["schema"].fields] == ["USER_ID", "ITEM_ID", "TIMESTAMP"]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("aitems://datasets", service.dataset_ids["interaction"]),
        (f"aitems://{service.service_id}", "service"),
    ]


def test_json_lines_from_object_storage(connections: EmulatorProcess, service: IntervalService) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    # memory:// is fsspec's in-process filesystem: the rows still stream through ObjectStoragePath.
    attach(protocol="memory", fs=MemoryFileSystem())
    remote = ObjectStoragePath("memory://bucket/pushes/users.jsonl")
    remote.write_text("".join(json.dumps({"USER_ID": f"n{n}", "AGE": 20 + n}) + "\n" for n in range(7)))
    operator = AitemsPushRowsOperator(
        task_id="push_users",
        service_id=service.service_id,
        dataset_id=service.dataset_ids["user"],
        dataset_type="user",
        data=remote,
        batch_size=3,
    )
    assert operator.execute(task_context("push_users"))["rows"] == 7
    assert pushed(connections.url, service.service_id, service.dataset_ids["user"])["batches"] == [3, 3, 1]


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("USER_ID,ITEM_ID\nu1,i1\n", {}, "the interaction data needs the column 'TIMESTAMP'"),
        ("user_id,ITEM_ID,TIMESTAMP\nu1,i1,1\n", {}, "column 'user_id' must be named exactly 'USER_ID'"),
        (
            interaction_rows(3) + "u1,i1,yesterday\n",
            {},
            "new.csv line 5: TIMESTAMP must be an integer, got 'yesterday'",
        ),
        (interaction_rows(3) + "u1,i1\n", {}, "new.csv line 5 has 2 values, the header 3 columns"),
        (interaction_rows(3), {"batch_size": 20_000}, "batch_size must be an integer from 1 to 10000"),
        (
            interaction_rows(3),
            {"on_batch_in_doubt": "retry"},
            "on_batch_in_doubt must be one of ['fail', 'resend', 'skip']",
        ),
        (interaction_rows(3), {"dataset_type": "interactions"}, "dataset_type must be one of"),
    ],
)
def test_bad_input_fails_before_any_row_is_sent(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path, text: str, options: dict, message: str
) -> None:
    data = tmp_path / "new.csv"
    data.write_text(text)
    requests_before = connections.state()["requests"]
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        push(service, data, batch_size=options.pop("batch_size", 1), **options).execute(task_context("push"))
    assert pushed(connections.url, service.service_id, service.dataset_ids["interaction"])["batches"] == []
    if " line " not in message:  # a row's values are typed by the dataset's schema, read first
        assert connections.state()["requests"] == requests_before  # refused before any request


def test_the_service_id_of_a_name_and_a_wrong_file_fail_before_any_request(
    connections: EmulatorProcess, tmp_path: Path
) -> None:
    (tmp_path / "rows.txt").write_text("x")
    requests_before = connections.state()["requests"]
    with pytest.raises(InvalidInputError, match="looks like a service name"):
        AitemsPushRowsOperator(
            task_id="p", service_id="shop_nightly", dataset_id="d", dataset_type="user", data=tmp_path / "rows.txt"
        ).execute(task_context("p"))
    with pytest.raises(InvalidInputError, match=r"must be a file ending in \.csv or \.jsonl or \.ndjson"):
        AitemsPushRowsOperator(
            task_id="p", service_id="abcdefgh123", dataset_id="d", dataset_type="user", data=tmp_path / "rows.txt"
        ).execute(task_context("p"))
    assert connections.state()["requests"] == requests_before


def test_a_batch_in_doubt_stops_the_task_and_a_cleared_task_resumes_after_it(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path
) -> None:
    data = jsonl(tmp_path / "new.jsonl", 40)
    context = task_context("push")
    interactions = service.dataset_ids["interaction"]
    operator = push(service, data, batch_size=10)
    # The answer to every push is lost after the service added the rows: the first one is in doubt.
    connections.configure(fault_rate=1.0, fault_kinds="lost")
    with pytest.raises(RowsInDoubtError, match=r"batch 1 of 4 \(lines 1-10 of new.jsonl\) is in doubt"):
        operator.execute(context)
    connections.configure(fault_rate=0.0)
    assert pushed(connections.url, service.service_id, interactions)["batches"] == [10]  # sent once
    # Tried again as it is: it still will not guess, and sends nothing.
    with pytest.raises(RowsInDoubtError, match=r"batch 1 of 4 .* was sent by an earlier try with no answer"):
        operator.execute(context)
    assert pushed(connections.url, service.service_id, interactions)["batches"] == [10]
    # The user knows it was added (here: the emulator says so), says so, and clears the task.
    operator.batch_in_doubt_landed = "True"  # as a template renders it
    result = operator.execute(context)
    # 30 rows acknowledged; batch 1's 10 were skipped, not counted (the service has them once).
    assert (result["rows"], result["batches"], result["in_doubt"]) == (30, 4, [1])
    received = pushed(connections.url, service.service_id, interactions)
    assert (received["batches"], received["repeated_count"]) == ([10, 10, 10, 10], 0)


def test_resend_delivers_a_batch_that_never_arrived(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path
) -> None:
    data = jsonl(tmp_path / "new.jsonl", 30)
    # Connections reset before the service read the rows: in doubt for the client, but not applied.
    connections.configure(fault_rate=0.4, fault_kinds="reset", fault_seed=11)
    result = push(service, data, batch_size=2, on_batch_in_doubt="resend").execute(task_context("push"))
    faults = connections.state()["faults"]["reset"]
    connections.configure(fault_rate=0.0)
    assert faults > 0
    assert result["rows"] == 30
    assert result["in_doubt"]  # the batches resent, by number
    received = pushed(connections.url, service.service_id, service.dataset_ids["interaction"])
    assert (received["rows"], received["distinct_rows"], received["repeated_count"]) == (30, 30, 0)


def test_an_answered_refusal_leaves_nothing_in_doubt_and_a_retry_resumes(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path
) -> None:
    data = jsonl(tmp_path / "new.jsonl", 20)
    context = task_context("push")
    operator = push(service, data, batch_size=5)
    hook = AitemsHook()
    # Refusals that outlast the hook's retries fail the try; nothing was applied, nothing is in doubt.
    connections.configure(fault_rate=1.0, fault_kinds="http_503")
    with pytest.raises(Exception, match="503"):
        operator.execute(context)
    connections.configure(fault_rate=0.0)
    assert context["task_state_store"]["aitems_row_push"]["in_doubt"] is None
    hook.push_rows(
        service.service_id,
        service.dataset_ids["interaction"],
        "interaction",
        [{"USER_ID": "x", "ITEM_ID": "y", "TIMESTAMP": 1}],
    )
    result = operator.execute(context)  # Airflow's retry
    assert result["batches"] == 4
    received = pushed(connections.url, service.service_id, service.dataset_ids["interaction"])
    assert received["batches"] == [1, 5, 5, 5, 5]


def test_schedule_start_is_sent_once_and_a_retry_finds_it_started(
    connections: EmulatorProcess, service: IntervalService
) -> None:
    start = AitemsScheduleOperator(
        task_id="start",
        service_id=service.service_id,
        term="hour3",
        train_types=["pop", "relatedItem"],
        hp_config={"item_top_n": "2000"},
    )
    first = start.execute(task_context("start"))
    assert first["status"] in ("scheduled", "scheduledLearning")
    assert set(first["versions"]) == {"pop", "relatedItem"}
    again = start.execute(task_context("start"))  # a retry after the answer was read
    assert again["versions"] == first["versions"]
    assert connections.state()["aitems_trainings_started"] == 2
    assert AitemsHook().get_service(service.service_id)["learningInterval"] == "hour3"
    stop = AitemsScheduleOperator(task_id="stop", service_id=service.service_id, action="stop")
    assert stop.execute(task_context("stop"))["status"] not in ("scheduled", "scheduledLearning")
    assert stop.execute(task_context("stop"))["action"] == "stop"  # nothing to stop: no error


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"term": "hour2"}, "term must be one of ['hour1', 'hour3', 'hour6', 'hour12']"),
        ({"train_types": ["daily"]}, "train_types: ['daily'] not allowed"),
        ({"hp_config": {"max_relate_item_top": 10}}, "hp_config has unknown option(s) ['max_relate_item_top']"),
        ({"hp_config": {"min_item_cut": 0}}, "hp_config.min_item_cut must be an integer from 1 to 1000"),
        ({"action": "pause"}, "action must be one of ['start', 'stop']"),
    ],
)
def test_schedule_bad_input_fails_before_any_request(connections: EmulatorProcess, options: dict, message: str) -> None:
    arguments = {"term": "hour1", "train_types": ["pop"], **options}
    requests_before = connections.state()["requests"]
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        AitemsScheduleOperator(task_id="s", service_id="abcdefgh123", **arguments).execute(task_context("s"))
    assert connections.state()["requests"] == requests_before


def test_the_update_trigger_waits_for_the_update_and_serializes(
    connections: EmulatorProcess, service: IntervalService
) -> None:
    hook = AitemsHook()
    hook.set_interval(service.service_id, "hour1")
    hook.start_schedule(service.service_id, ["pop"])
    version = hook.list_trainings(service.service_id)[0]["version"]
    trigger = AitemsUpdateTrigger(
        service_id=service.service_id,
        train_type="pop",
        train_version=version,
        conn_id="aitems_default",
        poll_interval=0.1,
        timeout=30,
    )
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    assert getattr(importlib.import_module(module), name)(**kwargs).serialize() == (classpath, kwargs)
    hook.push_rows(
        service.service_id,
        service.dataset_ids["interaction"],
        "interaction",
        [{"USER_ID": "u1", "ITEM_ID": "i3", "TIMESTAMP": 5}],
    )
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), 20)).payload
    assert (event["status"], event["job_status"], event["update_version"]) == ("success", "completed", "1")
    assert event["update_result"]["inputRowsCnt"] == 1


def test_the_interval_cycle_dag(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path, airflow_db
) -> None:
    data = tmp_path / "new.csv"
    data.write_text(interaction_rows(12))
    result = run_dag(
        DAGS, "aitems_interval", service=service.service_id, dataset=service.dataset_ids["interaction"], data=str(data)
    )
    assert result.states == {"start": "success", "push": "success", "update": "success", "stop": "success"}
    assert result.xcom("push")["rows"] == 12
    assert result.xcom("update")["job_status"] == "completed"
    assert pushed(connections.url, service.service_id, service.dataset_ids["interaction"])["batches"] == [5, 5, 2]


def test_a_failed_update_fails_the_wait(connections: EmulatorProcess, service: IntervalService) -> None:
    hook = AitemsHook()
    hook.set_interval(service.service_id, "hour1")
    hook.start_schedule(service.service_id, ["pop"], description="[emulator-update-fail:updateFailed]")
    version = hook.list_trainings(service.service_id)[0]["version"]
    row = {"USER_ID": "u2", "ITEM_ID": "i1", "TIMESTAMP": 9}
    hook.push_rows(service.service_id, service.dataset_ids["interaction"], "interaction", [row])
    trigger = AitemsUpdateTrigger(
        service_id=service.service_id,
        train_type="pop",
        train_version=version,
        update_version="1",
        conn_id="aitems_default",
        poll_interval=0.1,
        timeout=30,
    )
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), 20)).payload
    assert (event["status"], event["job_status"]) == ("failure", "updateFailed")


def test_a_retry_with_another_input_is_refused(
    connections: EmulatorProcess, service: IntervalService, tmp_path: Path
) -> None:
    data = jsonl(tmp_path / "new.jsonl", 20)
    context = task_context("push")
    connections.configure(fault_rate=1.0, fault_kinds="lost")
    with pytest.raises(RowsInDoubtError):
        push(service, data, batch_size=5).execute(context)
    connections.configure(fault_rate=0.0)
    with pytest.raises(InvalidInputError, match="an earlier try of this task pushed 0 batches of another input"):
        push(service, data, batch_size=4).execute(context)  # the batches would not line up
    assert pushed(connections.url, service.service_id, service.dataset_ids["interaction"])["batches"] == [5]
