"""AitemsServiceOperator, AitemsServiceSensor and the clean-up operators against the emulator and object storage."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import DAGS, run_dag

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import InvalidInputError, NotFoundError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.operators.aitems import (
    AitemsDeleteDatasetOperator,
    AitemsDeleteSchemaOperator,
    AitemsDeleteServiceOperator,
    AitemsServiceOperator,
    AitemsTrainOperator,
)
from airflow_provider_predone.sensors.aitems import AitemsServiceSensor, AitemsTrainingSensor

FILES = {
    "user": ("USER_ID,AGE\nu1,20\nu2,30\n", [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"}]),
    "item": ("ITEM_ID\ni1\ni2\n", [{"name": "ITEM_ID", "type": "string"}]),
    "interaction": (
        "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\nu2,i2,1700000100\n",
        [
            {"name": "USER_ID", "type": "string"},
            {"name": "ITEM_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"},
        ],
    ),
}


def _context() -> dict[str, Any]:
    """What a task's execute needs here: its retry record (kept in memory) and its identity."""
    store: dict[str, Any] = {}
    state = SimpleNamespace(get=store.get, set=store.__setitem__, delete=lambda k: store.pop(k, None))
    return {"task_state_store": state, "ti": SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1)}


@pytest.fixture
def hook(connections: EmulatorProcess) -> AitemsHook:
    return AitemsHook()


@pytest.fixture
def datasets(hook: AitemsHook, bucket: str, tmp_path: Path) -> dict[str, str]:
    """One ``enable`` dataset of each type, its file in the test's bucket."""
    ids = {}
    for kind, (text, fields) in FILES.items():
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        hook.object_storage.upload(path, bucket, f"{kind}.csv")
        hook.create_schema(kind, f"shop_{kind}", fields)
        ids[kind] = hook.create_dataset(kind, f"shop_{kind}", f"shop_{kind}", bucket, f"{kind}.csv")["datasetId"]
    deadline = time.monotonic() + 30
    while {hook.get_dataset(i)["status"] for i in ids.values()} != {"enable"}:
        assert time.monotonic() < deadline, [hook.get_dataset(i) for i in ids.values()]
        time.sleep(0.1)
    return ids


def _service_operator(datasets: dict[str, str], **kwargs: Any) -> AitemsServiceOperator:
    return AitemsServiceOperator(
        task_id="service",
        name=kwargs.pop("name", "shop-reco-nightly"),
        user_dataset_id=datasets["user"],
        item_dataset_id=datasets["item"],
        interaction_dataset_id=datasets["interaction"],
        deferrable=False,
        poll_interval=0.1,
        timeout=30,
        **kwargs,
    )


def test_a_service_is_created_linked_and_waited_for_then_reused(
    hook: AitemsHook, datasets: dict[str, str], connections: EmulatorProcess
) -> None:
    result = _service_operator(datasets, service_type="interval").execute(_context())
    assert (result["name"], result["type"], result["status"], result["created"]) == (
        "shop-reco-nightly",
        "interval",
        "learnable",
        True,
    )
    service_id = result["service_id"]
    for dataset_id in datasets.values():
        assert hook.get_dataset(dataset_id)["connectedServices"] == [service_id]
    # the next night: the same name is the same service, linked again
    again = _service_operator(datasets, service_type="interval").execute(_context())
    assert (again["service_id"], again["created"], again["status"]) == (service_id, False, "learnable")
    assert [s["serviceId"] for s in hook.list_services()] == [service_id]


def test_a_scheduled_service_is_not_relinked(hook: AitemsHook, datasets: dict[str, str], bucket: str) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    from airflow_provider_predone.exceptions import BadRequestError

    service_id = _service_operator(datasets, service_type="interval").execute(_context())["service_id"]
    hook.set_interval(service_id, "hour1")
    hook.start_schedule(service_id, ["personalRecommend"])
    # the next night with the same datasets: nothing to link, and a scheduled service learns on its cycle
    again = _service_operator(datasets, service_type="interval").execute(_context())
    assert again["service_id"] == service_id
    assert again["status"] in ("scheduled", "scheduledLearning")
    # other datasets: NAVER refuses links while scheduled, so the task says so before sending any
    newer = hook.create_dataset("interaction", "shop_interaction2", "shop_interaction", bucket, "interaction.csv")
    other = {**datasets, "interaction": newer["datasetId"]}
    with pytest.raises(BadRequestError, match="datasets cannot be linked while the service is scheduled"):
        hook.link_datasets(service_id, other)
    with pytest.raises(AirflowException, match=r"is scheduled(Learning)?: NAVER does not link datasets"):
        _service_operator(other, service_type="interval").execute(_context())
    assert hook.get_dataset(datasets["interaction"])["connectedServices"] == [service_id]


def test_a_retried_task_reattaches_to_the_service_it_linked(
    hook: AitemsHook, datasets: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    context = _context()
    # a try that linked the service and ended before its wait (its record stays for the retry)
    first = _service_operator(datasets, wait_for_completion=False).execute(context)
    assert first["status"] == "linked"
    capsys.readouterr()
    again = _service_operator(datasets).execute(context)
    logged = capsys.readouterr().out  # Airflow's task logger writes to stdout here
    assert "Re-attaching to AiTEMS service 'shop-reco-nightly'" in logged
    assert "Linked AiTEMS service" not in logged
    assert (again["service_id"], again["created"], again["status"]) == (first["service_id"], True, "learnable")
    assert len(hook.list_services()) == 1


def test_dataset_results_are_taken_and_their_types_checked_before_any_request(
    hook: AitemsHook, datasets: dict[str, str], connections: EmulatorProcess
) -> None:
    results = {kind: {"dataset_id": i, "type": kind, "status": "enable"} for kind, i in datasets.items()}
    swapped = AitemsServiceOperator(
        task_id="s",
        name="shop_swapped",
        user_dataset_id=results["item"],
        item_dataset_id=results["user"],
        interaction_dataset_id=results["interaction"],
        deferrable=False,
    )
    before = connections.state()["requests"]
    with pytest.raises(InvalidInputError, match="user_dataset_id takes the user dataset, but was given a 'item'"):
        swapped.execute(_context())
    with pytest.raises(InvalidInputError, match="repeats a dataset"):
        _service_operator({**datasets, "item": datasets["user"]}, name="shop_twice").execute(_context())
    with pytest.raises(InvalidInputError, match="service name must be at most 20 characters long"):
        _service_operator(datasets, name="shop_recommendations_nightly").execute(_context())
    assert connections.state()["requests"] == before
    linked = AitemsServiceOperator(
        task_id="s",
        name="shop_results",
        user_dataset_id=results["user"],
        item_dataset_id=results["item"],
        interaction_dataset_id=results["interaction"],
        deferrable=False,
        poll_interval=0.1,
        timeout=30,
    ).execute(_context())
    assert linked["status"] == "learnable"


def test_lineage_goes_from_the_three_datasets_to_the_service(datasets: dict[str, str]) -> None:
    operator = _service_operator(datasets, name="shop_lineage")
    service_id = operator.execute(_context())["service_id"]
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert sorted((d.namespace, d.name) for d in lineage.inputs) == sorted(
        ("aitems://datasets", dataset_id) for dataset_id in datasets.values()
    )
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(f"aitems://{service_id}", "service")]
    details = lineage.run_facets["predone_job"].details
    assert details["datasets"] == datasets
    # what the facet's JSON Schema (shipped in the package) describes, nothing else
    from jsonschema import Draft202012Validator

    from airflow_provider_predone import lineage as provider_lineage

    schema = provider_lineage.facet_schema(provider_lineage.JOB_FACET)
    details_schema = schema["$defs"][provider_lineage.JOB_FACET]["allOf"][1]["properties"]["details"]
    assert list(Draft202012Validator(details_schema).iter_errors(details)) == []


def test_a_task_resumed_on_another_worker_reports_the_same_lineage(datasets: dict[str, str]) -> None:
    context = _context()
    started = _service_operator(datasets, name="shop_resumed", wait_for_completion=False).execute(context)
    resumed = _service_operator(datasets, name="shop_resumed")  # a fresh object: prepare never ran in it
    event = {"status": "success", "job_status": "learnable", "message": "ok", "service_id": started["service_id"]}
    assert resumed.execute_complete(context, event)["status"] == "learnable"
    lineage = resumed.get_openlineage_facets_on_complete(None)
    assert sorted(d.name for d in lineage.inputs) == sorted(datasets.values())
    assert [d.namespace for d in lineage.outputs] == [f"aitems://{started['service_id']}"]


def test_a_disabled_service_fails_the_task(datasets: dict[str, str]) -> None:
    from airflow_provider_predone.exceptions import JobFailedError

    with pytest.raises(JobFailedError, match="'disable'"):
        _service_operator(datasets, name="shop_off", description="[emulator-fail:disable]").execute(_context())


def test_the_deferrable_operator_sensor_and_training_in_a_dag(
    hook: AitemsHook, datasets: dict[str, str], connections: EmulatorProcess, airflow_db: None
) -> None:
    result = run_dag(DAGS, "aitems_service", name="shop_dag", **datasets)
    assert result.states == {"service": "success", "learnable": "success", "train": "success"}
    service = result.xcom("service")
    assert (service["name"], service["type"], service["status"]) == ("shop_dag", "batch", "learnable")
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = {
            e.asset.uri: e.extra for e in session.query(AssetEvent).all() if e.source_run_id == result.dag_run.run_id
        }
    assert events[f"aitems://{service['service_id']}/service"] == {
        "event": "linked",
        "name": "shop_dag",
        "type": "batch",
        **{f"datasets.{kind}": dataset_id for kind, dataset_id in datasets.items()},
    }
    trained = result.xcom("train")
    assert trained["service_id"] == service["service_id"]
    training = hook.get_training(service["service_id"], "pop", trained["versions"]["pop"])
    # numeric strings sent as numbers, the undocumented option passed as given
    assert training["hpConfig"] == {"is_enabled": True, "item_top_n": 20000, "not_yet_documented": 3}


# --- the new user's findings (issue 24) ---


def test_a_service_name_given_as_service_id_is_refused_before_any_request(connections: EmulatorProcess) -> None:
    before = connections.state()["requests"]
    train = AitemsTrainOperator(task_id="t", service_id="shop-reco-nightly", train_types=["pop"], deferrable=False)
    with pytest.raises(InvalidInputError, match="'shop-reco-nightly' looks like a service name") as raised:
        train.execute(_context())
    assert "AitemsServiceOperator" in str(raised.value)
    sensors = [
        AitemsTrainingSensor(task_id="w", service_id="shop_reco", train_type="pop", version="v1", deferrable=False),
        AitemsServiceSensor(task_id="s", service_id="ShopReco", deferrable=False),
    ]
    for sensor in sensors:
        with pytest.raises(InvalidInputError, match="looks like a service name"):
            sensor.execute(_context())
    with pytest.raises(InvalidInputError, match="looks like a service name"):
        AitemsDeleteServiceOperator(task_id="d", service_id="shop-reco").execute(_context())
    assert connections.state()["requests"] == before


def test_hpo_mistakes_are_refused_before_any_request(connections: EmulatorProcess) -> None:
    before = connections.state()["requests"]
    unknown = AitemsTrainOperator(
        task_id="t", service_id="abc123", train_types=["pop"], hp_config={"max_relate_item_top": 10}
    )
    with pytest.raises(InvalidInputError, match="did you mean 'max_relate_recommend_top'"):
        unknown.execute(_context())
    out_of_range = AitemsTrainOperator(
        task_id="t", service_id="abc123", train_types=["pop"], hp_config={"item_top_n": 5}
    )
    with pytest.raises(InvalidInputError, match="item_top_n must be an integer from 1000 to 500000, got 5"):
        out_of_range.execute(_context())
    assert connections.state()["requests"] == before


# --- clean-up ---


def test_clean_up_deletes_service_datasets_and_schemas_once(hook: AitemsHook, datasets: dict[str, str]) -> None:
    service_id = _service_operator(datasets, name="shop_gone").execute(_context())["service_id"]
    delete_service = AitemsDeleteServiceOperator(task_id="d", service_id={"service_id": service_id})
    assert delete_service.execute(_context()) == {"service_id": service_id, "deleted": True}
    assert delete_service.execute(_context()) == {"service_id": service_id, "deleted": False}
    for kind, dataset_id in datasets.items():
        # the links went with the service, so the datasets may go, then their schemas
        result = AitemsDeleteDatasetOperator(task_id="d", dataset_id={"dataset_id": dataset_id}).execute(_context())
        assert result == {"dataset_id": dataset_id, "deleted": True}
        schema = AitemsDeleteSchemaOperator(task_id="d", schema_name=f"shop_{kind}")
        assert schema.execute(_context()) == {"schema_name": f"shop_{kind}", "deleted": True}
    strict = AitemsDeleteServiceOperator(task_id="d", service_id=service_id, missing_ok=False)
    with pytest.raises(NotFoundError):
        strict.execute(_context())
    assert hook.list_datasets() == []
    assert hook.list_schemas() == []


def test_each_service_is_created_exactly_once_under_injected_faults(
    hook: AitemsHook, datasets: dict[str, str], connections: EmulatorProcess
) -> None:
    names = [f"shop_fault_{n}" for n in range(4)]
    faults_before = dict(connections.state()["faults"])
    # errors, resets and answers lost after the service acted, on about a third of the requests
    connections.configure(fault_rate=0.3, fault_kinds="http_500,http_503,http_429,reset,lost", fault_seed=7)
    try:
        results = [_service_operator(datasets, name=name).execute(_context()) for name in names]
        again = _service_operator(datasets, name=names[0]).execute(_context())  # the next night
    finally:
        connections.configure(fault_rate=0.0)
    faults = {kind: n - faults_before[kind] for kind, n in connections.state()["faults"].items()}
    assert sum(faults.values()) >= 10, faults  # the faults really happened
    assert faults["lost"] >= 2, faults
    services = hook.list_services()
    assert sorted(s["name"] for s in services) == names  # none created twice
    assert {r["service_id"] for r in results} == {s["serviceId"] for s in services}
    assert again["service_id"] == results[0]["service_id"]
    assert {r["status"] for r in [*results, again]} == {"learnable"}


def test_the_emulator_links_one_enable_dataset_of_each_type(
    hook: AitemsHook, datasets: dict[str, str], bucket: str
) -> None:
    from airflow_provider_predone.exceptions import BadRequestError

    service_id = hook.create_service("shop_links")["serviceId"]
    waiting = hook.create_dataset("user", "shop_user_late", "shop_user", bucket, "user.csv")["datasetId"]
    with pytest.raises(BadRequestError, match=f"dataset {waiting} is waiting, not enable"):
        hook.link_datasets(service_id, {**datasets, "user": waiting})
    # types unknown to the client (a plain list): the service checks them
    with pytest.raises(BadRequestError, match="more than one user dataset"):
        hook.link_datasets(service_id, [datasets["user"], waiting, datasets["item"]])
    with pytest.raises(NotFoundError, match="dataset nosuchdataset not found"):
        hook.link_datasets(service_id, [datasets["user"], datasets["item"], "nosuchdataset"])
    assert hook.get_service(service_id)["status"] == "datasetRequired"
    hook.link_datasets(service_id, list(datasets.values()))
    assert hook.get_dataset(datasets["user"])["connectedServices"] == [service_id]


def test_the_trigger_serialises_ids_only_and_resumes_the_same_wait(hook: AitemsHook, datasets: dict[str, str]) -> None:
    import asyncio
    import importlib

    from airflow_provider_predone.triggers.aitems import AitemsServiceTrigger

    service_id = hook.create_service("shop_trigger")["serviceId"]
    hook.link_datasets(service_id, datasets)
    path, kwargs = AitemsServiceTrigger(
        service_id=service_id, conn_id="aitems_default", poll_interval=0.1, timeout=20
    ).serialize()
    assert kwargs["service_id"] == service_id
    module, _, name = path.rpartition(".")
    restarted = getattr(importlib.import_module(module), name)(**kwargs)  # as a triggerer restores it
    event = asyncio.run(asyncio.wait_for(restarted.run().__anext__(), 20)).payload
    assert (event["status"], event["job_status"], event["service_id"], event["name"]) == (
        "success",
        "learnable",
        service_id,
        "shop_trigger",
    )
