"""AiTEMS schemas and datasets: request building, input checks, error mapping, and the hook and
trigger against the emulator (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    NotFoundError,
    TransientApiError,
)
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import Phase

INTERACTION_FIELDS = [
    {"name": "USER_ID", "type": "string"},
    {"name": "ITEM_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"},
    {"name": "EVENT", "type": "string", "categorical": True},
]


# --- input checks, before anything is sent ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "must be 3 to 20 characters long, got 2"),
        ("a" * 21, "must be 3 to 20 characters long, got 21"),
        ("9items", "must start with a letter"),
        ("_items", "must start with a letter"),
        ("items/x", "may hold only letters, digits, '_' and '-', got '/'"),
        ("items x", "may hold only letters, digits, '_' and '-', got ' '"),
    ],
)
def test_a_bad_schema_name_says_which_rule_failed(name: str, rule: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"schema_name {rule}".replace("(", r"\(").replace(")", r"\)")):
        api.validate_schema_name(name)


def test_schema_names_as_permissive_as_documented() -> None:
    for name in ("abc", "shop-users_2026", "A" * 20):
        assert api.validate_schema_name(name) == name


@pytest.mark.parametrize(
    ("dataset_type", "fields", "message"),
    [
        ("users", INTERACTION_FIELDS, r"dataset_type must be one of \['user', 'item', 'interaction'\], got 'users'"),
        ("user", [], "fields must be a non-empty list"),
        ("user", [{"name": "USER_ID", "type": "text"}], r"fields\[0\].type must be one of \['string'"),
        ("user", [{"name": "USER_ID", "type": "string", "index": 1}], r"unknown key\(s\) \['index'\]"),
        ("user", [{"name": "user_id", "type": "string"}], "needs the column 'USER_ID' .*differs in case"),
        ("item", [{"name": "USER_ID", "type": "string"}], "the item schema needs the column 'ITEM_ID'"),
        ("interaction", INTERACTION_FIELDS[:2], "needs the column 'TIMESTAMP'"),
        (
            "interaction",
            [*INTERACTION_FIELDS[:2], {"name": "TIMESTAMP", "type": "string"}],
            "'TIMESTAMP' must have type 'long', got 'string'",
        ),
        ("user", [{"name": "USER_ID", "type": "string"}] * 2, r"repeats the column name\(s\) \['USER_ID'\]"),
        ("user", [{"name": "USER_ID", "type": "string", "categorical": "yes"}], "categorical must be true or false"),
    ],
)
def test_schema_fields_are_checked_naming_the_field(dataset_type: str, fields: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        api.create_schema(dataset_type, "shop_users", fields)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["USER_ID", "TIMESTAMP", "EVENT"], "the interaction data needs the column 'ITEM_ID'"),
        (["USER_ID", "item_id", "TIMESTAMP", "EVENT"], "column 'item_id' must be named exactly 'ITEM_ID'"),
        (["USER_ID", "TIMESTAMP", "ITEM_ID", "EVENT"], "column 2 is 'TIMESTAMP' but the schema has 'ITEM_ID' there"),
        (["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT", "PRICE"], "column 'PRICE' is not in the schema"),
        (
            ["USER_ID", "ITEM_ID", "TIMESTAMP"],
            r"the schema has the column 'EVENT', missing from the header \['USER_ID'",
        ),
    ],
)
def test_a_header_must_match_the_schema_exactly(header: list[str], message: str) -> None:
    columns = [f["name"] for f in INTERACTION_FIELDS]
    with pytest.raises(InvalidInputError, match=rf"^clicks\.csv: {message}"):
        api.check_header("interaction", header, columns, "clicks.csv")
    api.check_header("interaction", columns, columns, "clicks.csv")


def test_a_schema_from_a_header_keeps_its_order_and_types_the_required_columns() -> None:
    fields = api.fields_from_header("interaction", ["EVENT", "USER_ID", "ITEM_ID", "TIMESTAMP"], "clicks.csv")
    assert fields == [
        {"name": "EVENT", "type": "string"},
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
    ]
    with pytest.raises(InvalidInputError, match=r"clicks\.csv: column 'user_id' must be named exactly 'USER_ID'"):
        api.fields_from_header("user", ["user_id", "AGE"], "clicks.csv")


def test_a_dataset_request_names_its_object_storage_location() -> None:
    request = api.create_dataset("item", "items_20260101", "shop_items", "shop-data", "items/2026-01-01.csv", "day 1")
    assert (request.method, request.path, request.idempotent) == ("POST", "/datasets", False)
    assert request.json == {
        "type": "item",
        "name": "items_20260101",
        "schemaName": "shop_items",
        "osInfo": {"region": "KR", "bucket": "shop-data", "key": "items/2026-01-01.csv"},
        "description": "day 1",
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: api.create_dataset("item", "d", "shop_items", "Shop_Data", "k.csv"), "bucket must be a bucket name"),
        (lambda: api.create_dataset("item", "d", "shop_items", "ab", "k.csv"), "bucket must be a bucket name"),
        (lambda: api.create_dataset("item", "d", "shop_items", "shop-data", "/k.csv"), "key must be an object key"),
        (lambda: api.create_dataset("item", "", "shop_items", "shop-data", "k.csv"), "name must be 1 to 100"),
        (lambda: api.create_dataset("item", "d\n", "shop_items", "shop-data", "k.csv"), "control character"),
        (lambda: api.get_dataset("a/b"), "dataset_id must be a non-empty id"),
        (lambda: api.list_schemas("items"), "dataset_type must be one of"),
    ],
)
def test_bad_dataset_input_fails_before_any_request(call: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call()


def test_dataset_statuses() -> None:
    sets = api.DATASET_STATUSES
    assert [sets.classify(s) for s in ("enable", "upload_failed", "disable", "deleting", "waiting", "processing")] == [
        Phase.SUCCESS,
        Phase.FAILURE,
        Phase.FAILURE,
        Phase.FAILURE,
        Phase.RUNNING,
        Phase.RUNNING,
    ]


# --- error answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        ("400", "the account's API quota is exceeded"),
        ("410", "the gateway is throttling this access key"),
        ("420", "the gateway's rate limit was reached"),
    ],
)
def test_each_429_code_is_transient_and_says_what_it_means(code: str, meaning: str) -> None:
    body = {"error": {"errorCode": code, "message": "Too Many Requests"}}
    error = api.map_error(api.list_datasets(), 429, body, "")
    assert isinstance(error, TransientApiError)
    assert f"errorCode {code}" in str(error)
    assert meaning in str(error)


def test_a_refused_timestamp_says_to_check_the_workers_clock() -> None:
    skewed = {"error": {"errorCode": "200", "message": "Authentication Failed", "details": "Invalid timestamp"}}
    error = api.map_error(api.list_datasets(), 401, skewed, "")
    assert isinstance(error, AuthenticationError)
    assert "check the worker's clock" in str(error)
    assert "the keys are not the cause" in str(error)
    signature = {"error": {"errorCode": "200", "message": "Authentication Failed", "details": "signature mismatch"}}
    other = api.map_error(api.list_datasets(), 401, signature, "")
    assert isinstance(other, AuthenticationError)
    assert "the keys are not the cause" not in str(other)


# --- against the emulator ----------------------------------------------------------------------------


@pytest.fixture
def hook(connections: EmulatorProcess) -> AitemsHook:
    return AitemsHook()


def test_schemas_are_created_read_listed_and_deleted(hook: AitemsHook) -> None:
    default = hook.get_default_schema("interaction")
    assert [f["name"] for f in default["fields"]] == ["USER_ID", "ITEM_ID", "TIMESTAMP"]
    assert hook.validate_schema("interaction", "shop_clicks", INTERACTION_FIELDS) == {"result": "ok"}
    created = hook.create_schema("interaction", "shop_clicks", INTERACTION_FIELDS, "clicks")
    assert (created["name"], created["fields"]) == ("shop_clicks", INTERACTION_FIELDS)
    hook.create_schema("user", "shop_users", [{"name": "USER_ID", "type": "string"}])
    assert hook.get_schema("shop_clicks")["description"] == "clicks"
    assert [s["name"] for s in hook.list_schemas("interaction")] == ["shop_clicks"]
    assert {s["name"] for s in hook.list_schemas()} == {"shop_clicks", "shop_users"}
    with pytest.raises(BadRequestError, match="already exists"):
        hook.validate_schema("interaction", "shop_clicks", INTERACTION_FIELDS)
    hook.call(api.delete_schema("shop_clicks"))
    assert hook.find_schema("shop_clicks") is None
    with pytest.raises(NotFoundError, match=r"Get schema \(GET /schemas/shop_clicks\) for schema shop_clicks"):
        hook.get_schema("shop_clicks")


def test_a_dataset_is_registered_once_and_found_by_name(hook: AitemsHook, connections: EmulatorProcess) -> None:
    hook.create_schema("user", "shop_users", [{"name": "USER_ID", "type": "string"}])
    created = hook.create_dataset(
        "user", "users_day1", "shop_users", "shop-data", "users.csv", "[emulator-fail:upload_failed]"
    )
    assert created["status"] == "waiting"
    assert hook.find_dataset("users_day1")["datasetId"] == created["datasetId"]
    assert hook.find_dataset("users_day2") is None
    assert hook.get_dataset(created["datasetId"])["osInfo"] == {
        "region": "KR",
        "bucket": "shop-data",
        "key": "users.csv",
    }
    with pytest.raises(BadRequestError, match="a dataset with this name already exists"):
        hook.create_dataset("user", "users_day1", "shop_users", "shop-data", "users.csv")
    with pytest.raises(BadRequestError, match="the schema is used by dataset"):
        hook.call(api.delete_schema("shop_users"))
    hook.call(api.delete_dataset(created["datasetId"]))
    with pytest.raises(NotFoundError):
        hook.get_dataset(created["datasetId"])


def _seed_losing_only_the_first_answer() -> int:
    """A fault seed whose first draw at rate 0.5 is a fault and the next three are not (the injector's generator)."""

    def draws(seed: int) -> list[bool]:
        generator = random.Random(seed)
        return [generator.random() < 0.5 for _ in range(4)]

    return next(seed for seed in range(10_000) if draws(seed) == [True, False, False, False])


def test_a_lost_answer_is_reconciled_by_name_not_sent_twice(hook: AitemsHook, connections: EmulatorProcess) -> None:
    hook.create_schema("user", "shop_users", [{"name": "USER_ID", "type": "string"}])
    connections.configure(fault_rate=0.5, fault_kinds="lost", fault_seed=_seed_losing_only_the_first_answer())
    try:
        created = hook.create_dataset(
            "user", "users_lost", "shop_users", "shop-data", "u.csv", "[emulator-fail:upload_failed]"
        )
    finally:
        connections.configure(fault_rate=0.0, fault_kinds="")
    assert connections.state()["faults"]["lost"] == 1
    assert [d["datasetId"] for d in hook.list_datasets()] == [created["datasetId"]]


@pytest.mark.parametrize("code", ["400", "410", "420"])
def test_a_throttled_call_is_retried_then_succeeds(hook: AitemsHook, connections: EmulatorProcess, code: str) -> None:
    connections.aitems_throttle(code, 2)
    assert hook.list_datasets() == []


def test_throttling_that_lasts_fails_transiently_naming_the_code(
    hook: AitemsHook, connections: EmulatorProcess
) -> None:
    connections.aitems_throttle("410", 100)
    with pytest.raises(TransientApiError, match=r"errorCode 410.*the gateway is throttling this access key"):
        hook.list_datasets()


def test_a_skewed_clock_is_an_authentication_error_naming_the_clock(
    hook: AitemsHook, connections: EmulatorProcess
) -> None:
    connections.aitems_clock(400)
    with pytest.raises(AuthenticationError, match="check the worker's clock"):
        hook.list_schemas()
    connections.aitems_clock(-200)  # within 5 minutes: accepted
    assert hook.list_schemas() == []


def test_the_trigger_fails_fast_with_the_services_message(hook: AitemsHook, connections: EmulatorProcess) -> None:
    from airflow_provider_predone.triggers.aitems import AitemsDatasetTrigger

    hook.create_schema("item", "shop_items", [{"name": "ITEM_ID", "type": "string"}])
    dataset = hook.create_dataset(
        "item", "items_bad", "shop_items", "shop-data", "i.csv", "[emulator-fail:upload_failed]"
    )
    trigger = AitemsDatasetTrigger(
        dataset_id=dataset["datasetId"], conn_id="aitems_default", poll_interval=0.1, timeout=20
    )
    _, kwargs = trigger.serialize()
    assert kwargs["dataset_id"] == dataset["datasetId"]
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), 20)).payload
    assert (event["status"], event["job_status"], event["dataset_id"]) == (
        "failure",
        "upload_failed",
        dataset["datasetId"],
    )
    assert "failure scripted by the dataset's description" in event["message"]
    assert (event["name"], event["type"]) == ("items_bad", "item")


def test_datasets_are_listed_page_by_page(
    hook: AitemsHook, connections: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_predone.hooks import aitems as hooks

    monkeypatch.setattr(hooks, "LIST_PAGE", 2)  # pages of 2 instead of 1,000: five datasets take three pages
    hook.create_schema("user", "shop_users", [{"name": "USER_ID", "type": "string"}])
    for day in range(5):
        hook.create_dataset("user", f"users_{day}", "shop_users", "shop-data", "u.csv", "[emulator-fail:upload_failed]")
    assert sorted(d["name"] for d in hook.list_datasets()) == [f"users_{day}" for day in range(5)]
    assert hook.find_dataset("users_0") is not None  # the oldest: on the last page


def test_the_trigger_round_trips_through_its_serialised_kwargs() -> None:
    try:  # the triggerer's own import_string (Airflow 3.2+ moved it)
        from airflow._shared.module_loading import import_string
    except ImportError:
        from airflow.utils.module_loading import import_string

    from airflow_provider_predone.triggers.aitems import AitemsDatasetTrigger

    trigger = AitemsDatasetTrigger(dataset_id="ds1", conn_id="aitems_default", poll_interval=5, deadline=1e10)
    classpath, kwargs = trigger.serialize()
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)
    assert set(kwargs) >= {"dataset_id", "conn_id"}
