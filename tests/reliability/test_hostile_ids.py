"""
Ids in answers that would change a path or URL, keys inside answers that cannot be parsed, and
names that cannot be sent (issue 22, points 1, 5 and 8).

Over real HTTP to the crafted server of :mod:`test_hostile_responses`: each id that comes from
an answer and is later used in a path or URL is refused when its answer is parsed, naming the
endpoint and the field, on the sync hook and on the triggers' async client; a key in an answer
that fails to parse reaches no exception, log record or trigger event; a name with control
characters or bytes that are not UTF-8 is refused before any request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from helpers import aitems_connection, predone_connection
from test_hostile_responses import Handler, HostileServer

from airflow_provider_predone.exceptions import ApiError, InvalidInputError, UnexpectedResponseError
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook
from airflow_provider_predone.operators.predone import PredictionOneRetrainOperator, PredictionOneTrainOperator
from airflow_provider_predone.triggers.predone import (
    PredictionOnePredictionApiTrigger,
    PredictionOneRetrainTrigger,
    PredictionOneTrainTrigger,
)

P1 = "/v1/external"
CONFIG = {"tc": "y", "tt": "regression"}
#: An inference key in an answer: it must never be quoted anywhere.
INFERENCE_KEY = "k3y-" + "9" * 36


class RecordingServer(HostileServer):
    """The crafted server, remembering every request it was sent (``METHOD /path``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(f"{request.method} {request.path}")
        return await super()._dispatch(request)


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingServer]:
    """The crafted server, with both default connections pointing at it (one quick retry)."""
    server = RecordingServer()
    for running in server.serve():
        quick = {"max_retries": 1, "retry_wait_seconds": 0.01, "retry_max_wait_seconds": 0.05, "timeout": 5}
        monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(running.url, **quick))
        monkeypatch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(running.url, **quick))
        API_KEYS.clear()
        yield running
        API_KEYS.clear()


def answer(body: Any, *, post: Any = None) -> Handler:
    """A JSON answer; with ``post``, POST gets ``post`` and other methods ``body``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(post if post is not None and request.method == "POST" else body)

    return handler


# --- point 1: ids from answers -------------------------------------------------------------------

HUGE = "x" * 100_000
HOSTILE_IDS = ["../airflow/dags", "/abs", "a/b", "..", "%2e%2e", "a\x00b", "a\nb", "a\x1b[31mb", "x" * 129, HUGE]
HOSTILE_MODEL_IDS = ["../1", "1/2", -3, 0, 2**70, True, 1.5, "7 ", "seven", "\uff11\uff12", HUGE]


def classifier(**fields: Any) -> dict[str, Any]:
    base = {"classifier_id": "c-1", "model_id": 7, "status": "running", "version": 2, "api_key": INFERENCE_KEY}
    return {**base, "url": "http://127.0.0.1:1/v1/inference/c-1", **fields}


#: endpoint → (route, answer for a hostile value, the call through the sync hook)
SyncCase = tuple[str, Callable[[Any], Handler], Callable[[], Any]]


def _p1_cases() -> dict[tuple[str, str], SyncCase]:
    urls = {k: "http://127.0.0.1:1/u?X-Amz-Signature=f" for k in ("learn", "eval", "column_info")}

    def upload_urls(v: Any) -> Handler:
        return answer(
            {
                "external_process_id": v,
                "learn_data_set_upload_url": urls["learn"],
                "eval_data_set_upload_url": urls["eval"],
                "column_info_upload_url": urls["column_info"],
            }
        )

    hook = PredictionOneHook
    return {
        ("Train Data Upload", "external_process_id"): (
            "/data-sets/upload-url",
            upload_urls,
            lambda: hook().get_upload_urls("csv"),
        ),
        ("Train", "external_process_id"): (
            "/models",
            lambda v: answer({"external_process_id": v}),
            lambda: hook().create_model("p-1", "m", CONFIG),
        ),
        ("Retrain Data Upload", "retrain_job_id"): (
            "/retrain_jobs/upload_url",
            lambda v: answer({"retrain_job_id": v, "upload_url": urls["learn"]}),
            lambda: hook().get_retrain_upload_url(7, "data.csv"),
        ),
        ("Retrain Status Check", "retrain_job_id"): (
            "/retrain_jobs/r-1",
            lambda v: answer({"status": "job_running", "metadata": {"retrain_job_id": v}}),
            lambda: hook().get_retrain_status("r-1", 7),
        ),
        ("Create Classifier", "classifier_id"): (
            "/classifiers",
            lambda v: answer({"classifiers": []}, post={"classifier_id": v, "api_key": INFERENCE_KEY, "version": 1}),
            lambda: hook().create_prediction_api(7),
        ),
        ("Get Classifiers", "classifier_id"): (
            "/classifiers",
            lambda v: answer({"classifiers": [classifier(classifier_id=v)]}),
            lambda: hook().list_prediction_apis(),
        ),
    }


def _model_id_cases() -> dict[tuple[str, str], SyncCase]:
    hook = PredictionOneHook
    return {
        ("Train Status Check", "model_id"): (
            "/models/results",
            lambda v: answer({"status": "finished", "model_id": v}),
            lambda: hook().get_train_status("p-1"),
        ),
        ("List Models", "models[0].model_id"): (
            "/models",
            lambda v: answer({"models": [{"model_id": v, "name": "m"}], "metadata": {"total": 1}}),
            lambda: list(hook().list_models()),
        ),
        ("Retrain Status Check", "model_id"): (
            "/retrain_jobs/r-1",
            lambda v: answer({"status": "job_finished", "model_id": v, "metadata": {"retrain_job_id": "r-1"}}),
            lambda: hook().get_retrain_status("r-1", 7),
        ),
        ("Get Classifiers", "classifiers[0].model_id"): (
            "/classifiers",
            lambda v: answer({"classifiers": [classifier(model_id=v)]}),
            lambda: hook().list_prediction_apis(),
        ),
    }


def _aitems_cases() -> dict[tuple[str, str], SyncCase]:
    return {
        ("List trainings", "trains[0].version"): (
            "/api/v1/services/svc/trains",
            lambda v: answer({"trains": [{"type": "pop", "version": v, "status": "learning"}]}),
            lambda: AitemsHook().list_trainings("svc"),
        ),
        ("Create service", "serviceId"): (
            "/api/v1/services",
            lambda v: answer([], post={"serviceId": v, "name": "svc", "status": "datasetRequired"}),
            lambda: AitemsHook().create_service("svc"),
        ),
        ("List services", "services[0].serviceId"): (
            "/api/v1/services",
            lambda v: answer({"services": [{"serviceId": v, "name": "svc"}]}),
            lambda: AitemsHook().list_services(),
        ),
    }


ID_CASES = {**_p1_cases(), **_aitems_cases()}
MODEL_ID_CASES = _model_id_cases()


def _route(path: str) -> str:
    return path if path.startswith("/api/") else f"{P1}{path}"


def assert_refused_at_parse(exc: BaseException, endpoint: str, field: str) -> None:
    message = str(exc)
    assert isinstance(exc, UnexpectedResponseError), repr(exc)
    assert endpoint in message, message
    assert field in message, message
    assert len(message) < 1_000, len(message)  # a huge value is not echoed
    assert INFERENCE_KEY not in message
    assert not any(c in message for c in "\x00\n\x1b"), message


@pytest.mark.parametrize("value", HOSTILE_IDS, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("case", list(ID_CASES), ids=lambda c: f"{c[0]}:{c[1]}")
def test_hostile_ids_are_refused_when_the_answer_is_parsed(
    hostile: RecordingServer, case: tuple[str, str], value: str
) -> None:
    route, handler, call = ID_CASES[case]
    hostile.routes[_route(route)] = handler(value)
    with pytest.raises(UnexpectedResponseError) as raised:
        call()
    assert_refused_at_parse(raised.value, *case)


@pytest.mark.parametrize("value", HOSTILE_MODEL_IDS, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("case", list(MODEL_ID_CASES), ids=lambda c: f"{c[0]}:{c[1]}")
def test_hostile_model_ids_are_refused_when_the_answer_is_parsed(
    hostile: RecordingServer, case: tuple[str, str], value: Any
) -> None:
    route, handler, call = MODEL_ID_CASES[case]
    hostile.routes[_route(route)] = handler(value)
    with pytest.raises(UnexpectedResponseError) as raised:
        call()
    assert_refused_at_parse(raised.value, *case)


def test_honest_ids_still_pass(hostile: RecordingServer) -> None:
    """Control: uuids, short tokens and digit strings are ids; the refusals are about the values."""
    hostile.routes[f"{P1}/data-sets/upload-url"] = _p1_cases()[("Train Data Upload", "external_process_id")][1](
        "0b6f3c1e-9a57-4c3e-8d8e-5d7d3c1f2a10"
    )
    assert PredictionOneHook().get_upload_urls().external_process_id == "0b6f3c1e-9a57-4c3e-8d8e-5d7d3c1f2a10"
    hostile.routes[f"{P1}/models/results"] = answer({"status": "finished", "model_id": "42"})
    assert PredictionOneHook().get_train_status("p-1").model_id == 42
    hostile.routes["/api/v1/services/svc/trains"] = answer({"trains": [{"type": "pop", "version": "maqll1234"}]})
    assert AitemsHook().list_trainings("svc")[0]["version"] == "maqll1234"


#: The trigger path: the async client's endpoints → (route, hostile answer, trigger)
TRIGGER_CASES: dict[str, tuple[str, str, Callable[[Any], Any], Callable[[], Any]]] = {
    "train model_id": (
        "Train Status Check",
        "model_id",
        lambda v: ("/models/results", {"status": "finished", "model_id": v}),
        lambda: PredictionOneTrainTrigger(external_process_id="p-1", conn_id="predone_default", timeout=5),
    ),
    "retrain job id": (
        "Retrain Status Check",
        "retrain_job_id",
        lambda v: ("/retrain_jobs/r-1", {"status": "job_finished", "metadata": {"retrain_job_id": v}}),
        lambda: PredictionOneRetrainTrigger(retrain_job_id="r-1", model_id=7, conn_id="predone_default", timeout=5),
    ),
    "retrain model_id": (
        "Retrain Status Check",
        "model_id",
        lambda v: ("/retrain_jobs/r-1", {"status": "job_finished", "model_id": v}),
        lambda: PredictionOneRetrainTrigger(retrain_job_id="r-1", model_id=7, conn_id="predone_default", timeout=5),
    ),
    "classifier id": (
        "Get Classifiers",
        "classifier_id",
        lambda v: ("/classifiers/c-1", {"classifier": classifier(classifier_id=v)}),
        lambda: PredictionOnePredictionApiTrigger(classifier_id="c-1", conn_id="predone_default", timeout=5),
    ),
    "classifier model_id": (
        "Get Classifiers",
        "model_id",
        lambda v: ("/classifiers/c-1", {"classifiers": [classifier(model_id=v)]}),
        lambda: PredictionOnePredictionApiTrigger(classifier_id="c-1", conn_id="predone_default", timeout=5),
    ),
}


@pytest.mark.parametrize("value", ["../airflow/dags", "a\x00b", HUGE, -1, 2**70], ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("case", list(TRIGGER_CASES))
async def test_the_trigger_path_refuses_them_too(hostile: RecordingServer, case: str, value: Any) -> None:
    endpoint, field, answer_of, trigger_of = TRIGGER_CASES[case]
    if field != "model_id" and not isinstance(value, str):
        value = f"{value}/.."
    route, body = answer_of(value)
    hostile.routes[f"{P1}{route}"] = answer(body)
    trigger = trigger_of()
    # The async client itself ...
    async with trigger.client() as client:
        with pytest.raises(UnexpectedResponseError) as raised:
            await trigger.fetch(client)
    assert_refused_at_parse(raised.value, endpoint, field)
    # ... and the trigger's one event: an error naming the endpoint and the field.
    event = (await trigger.poll()).payload
    assert (event["status"], event["error_type"]) == ("error", "UnexpectedResponseError"), event
    assert endpoint in event["message"], event
    assert field in event["message"], event
    assert len(json.dumps(event)) < 1_500


# --- point 5: keys inside answers that cannot be parsed --------------------------------------------

#: Answers carrying an inference key, each unparsable in one field (or not JSON at all).
LEAKY_ANSWERS: dict[str, tuple[str, bytes]] = {
    "mistyped model_id": ("/classifiers", json.dumps({"classifiers": [classifier(model_id="seven")]}).encode()),
    "mistyped version": ("/classifiers", json.dumps({"classifiers": [classifier(version="v2")]}).encode()),
    "missing classifier_id": (
        "/classifiers",
        json.dumps({"classifiers": [{k: v for k, v in classifier().items() if k != "classifier_id"}]}).encode(),
    ),
    "classifiers not a list": ("/classifiers", json.dumps({"classifiers": classifier()}).encode()),
    "cut short": ("/classifiers", json.dumps({"classifiers": [classifier()]}).encode()[:-10]),
    "invalid JSON": ("/classifiers", b'{"api_key": "' + INFERENCE_KEY.encode() + b'", "classifier_id": c-1}'),
    "key with a URL": (
        "/classifiers",
        json.dumps({"classifiers": [classifier(model_id=[1], url="https://h/x?X-Amz-Signature=" + "f" * 64)]}).encode(),
    ),
}


def _all_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{r.getMessage()} {logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
    )


@pytest.mark.parametrize("case", list(LEAKY_ANSWERS))
def test_a_key_in_an_unparsable_answer_reaches_no_error_or_log(
    hostile: RecordingServer, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    route, body = LEAKY_ANSWERS[case]
    hostile.routes[f"{P1}{route}"] = HostileServer.answering(200, body, "application/json")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UnexpectedResponseError) as raised:
        PredictionOneHook().list_prediction_apis()
    text = f"{raised.value} {raised.value!r} {raised.value.__cause__!r} {raised.value.__context__!r}"
    assert "Get Classifiers" in text
    assert INFERENCE_KEY not in text
    assert "f" * 64 not in text
    assert INFERENCE_KEY not in _all_text(caplog)


async def test_a_key_in_an_unparsable_answer_reaches_no_trigger_event(
    hostile: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"classifiers": [classifier(model_id="seven")]}).encode()
    hostile.routes[f"{P1}/classifiers/c-1"] = HostileServer.answering(200, body, "application/json")
    trigger = PredictionOnePredictionApiTrigger(classifier_id="c-1", conn_id="predone_default", timeout=5)
    event = (await trigger.poll()).payload
    assert event["status"] == "error", event
    assert "Get Classifiers" in event["message"], event
    assert "model_id" in event["message"], event
    assert INFERENCE_KEY not in json.dumps(event)
    # The sensor's way (end_from_trigger): the message is logged by the trigger and the task fails.
    ending = PredictionOnePredictionApiTrigger(
        classifier_id="c-1", conn_id="predone_default", timeout=5, end_from_trigger=True
    )
    [final] = [e async for e in ending.run()]
    assert INFERENCE_KEY not in repr(final.payload)
    assert INFERENCE_KEY not in _all_text(caplog)


@pytest.mark.parametrize(
    "body",
    [
        {"api_key": INFERENCE_KEY, "detail": "bad"},
        {"error": {"api_key": INFERENCE_KEY}, "Authorization": f"Bearer {INFERENCE_KEY}"},
        {"x-api-key": INFERENCE_KEY},
    ],
)
@pytest.mark.parametrize("status", [400, 500])
def test_error_answers_quote_no_api_key_field(hostile: RecordingServer, status: int, body: dict[str, Any]) -> None:
    hostile.routes[f"{P1}/classifiers"] = HostileServer.answering(status, json.dumps(body).encode(), "application/json")
    with pytest.raises(ApiError) as raised:
        PredictionOneHook().list_prediction_apis()
    assert f"HTTP {status}" in str(raised.value)
    assert INFERENCE_KEY not in str(raised.value)


async def test_status_texts_reach_trigger_events_bounded_and_without_signatures(hostile: RecordingServer) -> None:
    """A status or message from an answer is quoted in events and logs: one line, bounded, no query string."""
    signed = "https://storage.example/r.zip?X-Amz-Signature=" + "f" * 64
    hostile.routes[f"{P1}/models/results"] = answer({"status": "failed", "message": f"see\n{signed}"})
    trigger = PredictionOneTrainTrigger(external_process_id="p-1", conn_id="predone_default", timeout=5)
    event = (await trigger.poll()).payload
    assert event["status"] == "failure", event
    assert "storage.example/r.zip" in event["message"], event
    assert "f" * 64 not in json.dumps(event)
    assert "\n" not in event["message"]

    from airflow_provider_predone.triggers.aitems import AitemsTrainingTrigger

    hostile.routes["/api/v1/services/svc/trains/pop/versions/v1"] = answer({"status": HUGE + signed})
    aitems = AitemsTrainingTrigger(
        service_id="svc", versions={"pop": "v1"}, conn_id="aitems_default", timeout=5, running_statuses=["learning"]
    )
    event = (await aitems.poll()).payload
    assert event["status"] == "failure", event
    assert len(json.dumps(event)) < 2_000
    assert "f" * 64 not in json.dumps(event)


# --- point 8: names that cannot be sent ----------------------------------------------------------

BAD_NAMES = ["m\x07odel", "two\nlines", "bidi\u202etxt", "a\udcff"]


def _context() -> dict[str, Any]:
    store: dict[str, Any] = {}
    state = SimpleNamespace(get=store.get, set=store.__setitem__, delete=lambda k: store.pop(k, None))
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1)
    return {"task_state_store": state, "ti": ti}


def _csv(path: Path) -> Path:
    path.write_text("x,y\n1,2\n3,4\n")
    return path


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_model_name_that_cannot_be_sent_is_refused_before_any_request(
    hostile: RecordingServer, tmp_path: Path, name: str
) -> None:
    operator = PredictionOneTrainOperator(
        task_id="t", train_data=str(_csv(tmp_path / "train.csv")), model_name=name, config=CONFIG
    )
    with pytest.raises(InvalidInputError, match="model_name"):
        operator.execute(_context())  # type: ignore[arg-type]
    assert hostile.seen == []


@pytest.mark.parametrize("name", [f"{n}.csv" for n in BAD_NAMES], ids=repr)
def test_an_upload_filename_that_cannot_be_sent_is_refused_before_any_request(
    hostile: RecordingServer, tmp_path: Path, name: str
) -> None:
    operator = PredictionOneRetrainOperator(
        task_id="t", model_id=7, train_data=str(_csv(tmp_path / "train.csv")), upload_filename=name
    )
    with pytest.raises(InvalidInputError, match="upload_filename"):
        operator.execute(_context())  # type: ignore[arg-type]
    assert hostile.seen == []


@pytest.mark.parametrize("name", [f"{n}.csv" for n in BAD_NAMES], ids=repr)
@pytest.mark.parametrize("operator_class", [PredictionOneTrainOperator, PredictionOneRetrainOperator])
def test_an_input_file_name_that_cannot_be_sent_is_refused_before_any_request(
    hostile: RecordingServer, tmp_path: Path, name: str, operator_class: type[Any]
) -> None:
    path = _csv(tmp_path / name)  # on Linux, "\udcff" is the byte 0xff in the file's name
    assert path.exists()
    if operator_class is PredictionOneTrainOperator:
        operator = operator_class(task_id="t", train_data=str(path), model_name="m", config=CONFIG)
    else:
        operator = operator_class(task_id="t", model_id=7, train_data=str(path))
    with pytest.raises(InvalidInputError, match="train_data"):
        operator.execute(_context())
    assert hostile.seen == []


def test_the_same_operators_send_plain_names(hostile: RecordingServer, tmp_path: Path) -> None:
    """Control: with a plain name the operator gets as far as the service (which answers nothing)."""
    operator = PredictionOneRetrainOperator(
        task_id="t", model_id=7, train_data=str(_csv(tmp_path / "日本語.csv")), upload_filename="データ.csv"
    )
    with pytest.raises(ApiError, match="no crafted answer"):  # it reached the service
        operator.execute(_context())  # type: ignore[arg-type]
    assert hostile.seen


@pytest.mark.parametrize("bad_id", ["s\nvc", "s\x00vc", "s\u202evc"], ids=repr)
def test_an_id_the_user_gives_with_control_characters_is_refused_before_any_request(
    hostile: RecordingServer, bad_id: str
) -> None:
    from airflow_provider_predone.operators.aitems import AitemsTrainOperator
    from airflow_provider_predone.operators.predone import PredictionOneSwitchModelOperator

    with pytest.raises(InvalidInputError, match="service_id"):
        AitemsTrainOperator(task_id="t", service_id=bad_id, train_types=["pop"]).execute(_context())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="retrain_job_id"):
        PredictionOneSwitchModelOperator(task_id="t", retrain_job_id=bad_id, model_id=7).execute(_context())  # type: ignore[arg-type]
    assert hostile.seen == []
