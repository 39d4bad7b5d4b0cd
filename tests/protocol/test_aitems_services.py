"""AiTEMS services: the checks a new user runs into first (names, ids, HPO) and the service requests."""

from __future__ import annotations

import re

import pytest

from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol import predone

# --- service names (issue 24: "-" allowed, each rule its own message) ---


@pytest.mark.parametrize("name", ["shop-reco-nightly", "_shop", "abc", "a" * 20, "Shop_Reco-2"])
def test_a_service_name_may_hold_a_dash_as_the_most_permissive_page_allows(name: str) -> None:
    assert api.validate_service_name(name) == name
    assert api.create_service(name).json["name"] == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ab", "service name must be at least 3 characters long, got 2"),
        ("a" * 21, "service name must be at most 20 characters long, got 21"),
        ("9lives", "service name must start with a letter or '_', not '9'"),
        ("-shop", "service name must start with a letter or '_', not '-'"),
        ("shop.reco", "service name may contain only letters, digits, '_' and '-', not ['.']"),
        ("shop reco!", "service name may contain only letters, digits, '_' and '-', not [' ', '!']"),
    ],
)
def test_each_broken_name_rule_has_its_own_message(name: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)) as raised:
        api.validate_service_name(name)
    # one rule broken, one rule named
    assert str(raised.value).count("service name must") + str(raised.value).count("may contain") == 1


def test_a_name_breaking_two_rules_names_both() -> None:
    with pytest.raises(InvalidInputError) as raised:
        api.validate_service_name("9" + "x" * 20 + ".")
    text = str(raised.value)
    assert "at most 20 characters" in text
    assert "start with a letter" in text
    assert "not ['.']" in text


# --- a service name passed as service_id ---


@pytest.mark.parametrize("value", ["shop-reco-nightly", "shop_reco", "ShopReco"])
def test_a_service_id_that_looks_like_a_name_is_refused_saying_how_to_get_the_id(value: str) -> None:
    for build in (
        lambda: api.list_trainings(value),
        lambda: api.get_service(value),
        lambda: api.request_training(value, ["pop"], None, None),
        lambda: api.get_training(value, "pop", "v1"),
    ):
        with pytest.raises(InvalidInputError) as raised:
            build()
        text = str(raised.value)
        assert f"service_id {value!r} looks like a service name" in text
        assert "AitemsServiceOperator" in text
        assert "find_service" in text


def test_generated_ids_and_upstream_results_are_service_ids() -> None:
    assert api.service_id_value("6wxgu1a2b3c") == "6wxgu1a2b3c"
    assert api.service_id_value({"service_id": "abc123", "name": "shop"}) == "abc123"
    with pytest.raises(InvalidInputError, match="service_id must be a non-empty id"):
        api.service_id_value("a/b")


# --- HPO options ---


def test_an_unknown_hpo_option_lists_the_known_ones_and_the_escape_hatch() -> None:
    with pytest.raises(InvalidInputError) as raised:
        api.validate_hp_config({"is_enabled": True, "max_relate_item_top": 10})
    text = str(raised.value)
    assert "unknown option(s) ['max_relate_item_top']" in text
    assert "did you mean 'max_relate_recommend_top'?" in text
    assert all(option in text for option in api.HP_OPTIONS)
    assert "extra_hp_options" in text


def test_an_option_the_docs_do_not_list_yet_goes_unchecked_through_extra_options() -> None:
    config = api.validate_hp_config({"is_enabled": True}, extra_options={"new_knob": "x"})
    assert config == {"is_enabled": True, "new_knob": "x"}
    with pytest.raises(InvalidInputError, match="documented options and is_enabled go in hp_config"):
        api.validate_hp_config({}, extra_options={"item_top_n": 1})


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("session_max_timestamp", 9, "10 to 86400"),
        ("item_top_n", 500, "1000 to 500000"),
        ("item_top_n", 500_001, "1000 to 500000"),
        ("min_item_cut", 0, "1 to 1000"),
        ("min_session_length", 1, "2 to 1000"),
        ("max_user_recommend_top", 1001, "1 to 1000"),
        ("max_relate_recommend_top", "0", "1 to 1000"),
        ("item_top_n", 2.5, "1000 to 500000"),
        ("item_top_n", True, "1000 to 500000"),
    ],
)
def test_hpo_values_are_checked_against_navers_ranges(option: str, value: object, allowed: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(f"hp_config.{option} must be an integer from {allowed}")):
        api.validate_hp_config({"is_enabled": True, option: value})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidInputError) as raised:
        api.validate_hp_config({"is_enabled": "yes", "item_top_n": 1, "min_item_cut": 0})
    text = str(raised.value)
    assert "is_enabled must be true or false" in text
    assert "item_top_n" in text
    assert "min_item_cut" in text


def test_numeric_strings_in_range_are_sent_as_numbers() -> None:
    config = api.validate_hp_config({"is_enabled": "true", "item_top_n": "5000", "min_item_cut": " 5 "})
    assert config == {"is_enabled": True, "item_top_n": 5000, "min_item_cut": 5}
    body = api.request_training("abc123", ["pop"], {"item_top_n": "20000"}, None).json
    assert body["hpConfig"] == {"is_enabled": False, "item_top_n": 20000}
    # Prediction One reads its integers through the same helper: the same strings pass and fail
    assert predone.validate_config({"tc": "y", "tt": "regression", "cv": " 5 "})["cv"] == "5"
    for text in ("5.0", "five", "true"):
        with pytest.raises(InvalidInputError, match="'cv' must be an integer"):
            predone.validate_config({"tc": "y", "tt": "regression", "cv": text})
        with pytest.raises(InvalidInputError, match="item_top_n must be an integer"):
            api.validate_hp_config({"item_top_n": text})


# --- service requests ---


def test_service_requests() -> None:
    get = api.get_service("abc123")
    assert (get.method, get.target) == ("GET", "/services/abc123")
    link = api.link_datasets("abc123", {"interaction": "d3", "user": "d1", "item": "d2"})
    assert (link.method, link.target, link.json) == (
        "POST",
        "/services/abc123/datasets",
        {"datasetIds": ["d1", "d2", "d3"]},
    )
    delete = api.delete_service("abc123")
    assert (delete.method, delete.target) == ("DELETE", "/services/abc123")
    assert get.parse({"serviceId": "abc123", "status": "learnable"})["status"] == "learnable"


@pytest.mark.parametrize(
    ("dataset_ids", "message"),
    [
        ({"user": "d1", "item": "d2"}, "missing ['interaction']"),
        ({"user": "d1", "item": "d2", "interaction": "d3", "users": "d4"}, "not a dataset type: ['users']"),
        (["d1", "d2"], "exactly 3 datasets"),
        (["d1", "d1", "d2"], "repeats a dataset"),
        ({"user": "d1", "item": "d/2", "interaction": "d3"}, "dataset_ids['item'] must be a non-empty id"),
    ],
)
def test_linking_needs_one_dataset_of_each_type(dataset_ids: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        api.link_datasets("abc123", dataset_ids)


def test_service_statuses_say_when_a_service_can_learn() -> None:
    from airflow_provider_predone.protocol.common import Phase

    classify = api.SERVICE_STATUSES.classify
    assert classify("learnable") is Phase.SUCCESS
    assert classify("datasetRequired") is Phase.RUNNING
    assert {classify(s) for s in ("disable", "deleting", "deleted")} == {Phase.FAILURE}


# --- against the emulator (a real server process) ---


@pytest.fixture
def hook(connections):
    from airflow_provider_predone.hooks.aitems import AitemsHook

    return AitemsHook()


def test_a_name_with_a_dash_is_created_and_found(hook) -> None:
    service = hook.create_service("shop-reco-nightly")
    assert service["status"] == "datasetRequired"
    assert hook.find_service("shop-reco-nightly")["serviceId"] == service["serviceId"]
    assert hook.get_service(service["serviceId"])["name"] == "shop-reco-nightly"
    assert hook.find_service("nobody") is None


def test_get_or_create_service_creates_once_and_then_reuses(hook) -> None:
    first, created = hook.get_or_create_service("shop_once", "interval")
    again, created_again = hook.get_or_create_service("shop_once", "interval")
    assert (created, created_again) == (True, False)
    assert again["serviceId"] == first["serviceId"]
    assert [s["name"] for s in hook.list_services()] == ["shop_once"]
    with pytest.raises(InvalidInputError, match="exists with type 'interval', not 'batch'"):
        hook.get_or_create_service("shop_once", "batch")


def test_get_or_create_service_is_exactly_once_when_the_create_answer_is_lost(hook, connections) -> None:
    # Seed 229 at rate 0.5: the second request (the create) has its answer lost, the next ones pass.
    lost_before = connections.state()["faults"]["lost"]
    connections.configure(fault_rate=0.5, fault_kinds="lost", fault_seed=229)
    service, created = hook.get_or_create_service("shop_lost")
    connections.configure(fault_rate=0.0)
    assert connections.state()["faults"]["lost"] == lost_before + 1
    assert created is True
    assert [s["serviceId"] for s in hook.list_services()] == [service["serviceId"]]


def test_delete_service_with_missing_ok(hook) -> None:
    from airflow_provider_predone.exceptions import NotFoundError

    service_id = hook.create_service("shop_gone")["serviceId"]
    assert hook.delete_service(service_id) is True
    assert hook.find_service("shop_gone") is None
    assert hook.delete_service(service_id, missing_ok=True) is False
    with pytest.raises(NotFoundError):
        hook.delete_service(service_id)
    with pytest.raises(NotFoundError):
        hook.get_service(service_id)


def test_a_name_that_passes_for_an_id_gets_a_404_that_says_what_an_id_is(hook) -> None:
    from airflow_provider_predone.exceptions import NotFoundError

    with pytest.raises(NotFoundError) as raised:
        hook.list_trainings("shopreco")  # lowercase letters: it reaches the service, which knows no such id
    assert "a service_id is the id AiTEMS generated, not the service's name" in str(raised.value)
    assert "find_service(name)" in str(raised.value)
    with pytest.raises(NotFoundError) as other:
        hook.get_dataset("nodataset")
    assert "service_id" not in str(other.value)  # the hint is for service paths only
