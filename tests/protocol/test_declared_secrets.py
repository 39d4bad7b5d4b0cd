"""
Response fields declared secret never reach a log record, an exception or a trigger event.

Every response model of ``protocol.predone`` declares its secret fields (``SecretKey``,
``PresignedUrl``, ``SecretKeys`` for the objects a field holds); masking and error excerpts are
derived from that declaration. This test walks every declared field and serves, over real HTTP
from the crafted server of the hostile-response tests, an answer carrying a marker in it: read
(the marker must then be registered with Airflow's secrets masker), unparsable (cut short, or
of the wrong shape) and as an error answer. It also fails when a field named like a secret is
not declared, and when a request builder answers a model that is not registered.

AiTEMS answers are plain JSON objects (no response model): no field of theirs is a secret.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import re
import time
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from reliability.test_hostile_responses import HostileServer, hostile  # noqa: F401 (the fixture)

from airflow_provider_predone.exceptions import ApiError
from airflow_provider_predone.hooks.predone import PredictionOneHook
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import RESPONSE_MODELS, ApiRequest, Secret, SecretKeys
from airflow_provider_predone.triggers.base import StatusTrigger
from airflow_provider_predone.triggers.predone import (
    PredictionOnePredictionApiTrigger,
    PredictionOneRetrainTrigger,
    PredictionOneTrainTrigger,
)

MARKER = "Mk7secretMARKERq9Zx"
PREFIX = "/v1/external"

#: Field names that say "secret"; a ``*_url`` of an answer is presigned.
SECRETISH = re.compile(r"api_?key|secret|token|password|signature|credential|(^|_)url$", re.IGNORECASE)
#: Fields with such a name that are not secrets, each with why.
NOT_SECRET: dict[tuple[type, str], str] = {
    (api.PredictionApi, "url"): "the prediction API's address, not presigned: its api_key authorises inference",
}


def value_for(how: Secret, marker: str) -> str:
    """A value of the field's kind carrying the marker where the secret is (a URL: its signature)."""
    if how is Secret.URL:
        return f"https://storage.example/blob.zip?X-Amz-Expires=900&X-Amz-Signature={marker}"
    return marker


@dataclasses.dataclass
class Case:
    """How one response model is asked for: its route, an answer around a field, the calls."""

    path: str
    answer: Callable[[str, str], Any]  #: (field, value) -> the JSON answer
    sync: Callable[[PredictionOneHook], Any]
    trigger: Callable[[], StatusTrigger] | None = None
    method: str = "GET"


def _trigger(cls: type[StatusTrigger], **ids: Any) -> Callable[[], StatusTrigger]:
    return lambda: cls(conn_id="predone_default", poll_interval=0.05, deadline=time.time() + 5, **ids)


CASES: dict[type, Case] = {
    api.ApiKey: Case(
        "/api-key",
        lambda f, v: {"end_date": "2099-01-01T00:00:00Z", f: v},
        lambda hook: hook.get_api_key("train"),
    ),
    api.UploadUrls: Case(
        "/data-sets/upload-url",
        lambda f, v: {
            "external_process_id": "p-1",
            "learn_data_set_upload_url": "https://s.example/l.csv",
            "eval_data_set_upload_url": "https://s.example/e.csv",
            "column_info_upload_url": "https://s.example/c.csv",
            f: v,
        },
        lambda hook: hook.get_upload_urls(),
    ),
    api.TrainStatus: Case(
        "/models/results",
        lambda f, v: {"status": "finished", f: v},
        lambda hook: hook.get_train_status("p-1"),
        _trigger(PredictionOneTrainTrigger, external_process_id="p-1"),
    ),
    api.RetrainUpload: Case(
        "/retrain_jobs/upload_url",
        lambda f, v: {"retrain_job_id": "r-1", "upload_url": "https://s.example/u", f: v},
        lambda hook: hook.get_retrain_upload_url(7, "f.csv"),
    ),
    api.RetrainStatus: Case(
        "/retrain_jobs/r-1",
        lambda f, v: {"status": "job_finished", "metadata": {"retrain_job_id": "r-1"}, f: v},
        lambda hook: hook.get_retrain_status("r-1", 7),
        _trigger(PredictionOneRetrainTrigger, retrain_job_id="r-1", model_id=7),
    ),
    api.PredictionApi: Case(
        "/classifiers/c-1",
        # raw declares the api_key of the object it keeps: the same field of the answer
        lambda f, v: {"classifier_id": "c-1", "model_id": 7, "status": "running", "url": "https://x", "api_key": v},
        lambda hook: hook.get_prediction_api("c-1"),
        _trigger(PredictionOnePredictionApiTrigger, classifier_id="c-1"),
    ),
    api.CreatedPredictionApi: Case(
        "/classifiers",
        lambda f, v: {"classifier_id": "c-1", "version": 1, f: v},
        lambda hook: hook.create_prediction_api(7),
        method="POST",
    ),
    api.Page: Case(
        "/data-sets",
        lambda f, v: {"data_sets": [{"data_set_id": 1, "download_url": v}], "metadata": {"total": 1}},
        lambda hook: list(hook.list_data_sets()),
    ),
}


def declared() -> Iterator[tuple[type, str, Secret]]:
    """Every declared secret: (model, field, kind); a ``SecretKeys`` field once per key."""
    for model, fields in RESPONSE_MODELS.items():
        if model.__module__ != api.__name__:
            continue
        for name, how in fields.items():
            if isinstance(how, SecretKeys):
                yield from ((model, f"{name}[].{key}", kind) for key, kind in how.keys.items())
            else:
                yield model, name, how


def answered_models() -> set[type]:
    """The models the request builders of ``protocol.predone`` answer (``ApiRequest[X]``, ``list[X]``)."""
    found = set()
    for _, function in inspect.getmembers(api, inspect.isfunction):
        if function.__module__ != api.__name__:
            continue
        hint = typing.get_type_hints(function).get("return")
        if typing.get_origin(hint) is not ApiRequest:
            continue
        (result,) = typing.get_args(hint)
        if typing.get_origin(result) is list:
            (result,) = typing.get_args(result)
        if dataclasses.is_dataclass(result):
            found.add(result)
    return found


def test_every_answered_model_is_registered_and_every_secret_named_field_declared() -> None:
    models = answered_models()
    assert {api.TrainStatus, api.PredictionApi} <= models  # the walk finds them
    assert models <= set(RESPONSE_MODELS), f"not registered with @response_model: {models - set(RESPONSE_MODELS)}"
    undeclared = [
        f"{model.__name__}.{f.name}"
        for model in RESPONSE_MODELS
        for f in dataclasses.fields(model)
        if SECRETISH.search(f.name) and f.name not in RESPONSE_MODELS[model] and (model, f.name) not in NOT_SECRET
    ]
    assert not undeclared, f"named like secrets but not declared: {undeclared}"
    # Each declared secret stays out of repr too.
    shown = [
        f"{m.__name__}.{f.name}"
        for m in RESPONSE_MODELS
        for f in dataclasses.fields(m)
        if f.name in RESPONSE_MODELS[m] and f.repr
    ]
    assert not shown, f"declared secret but shown by repr: {shown}"
    # And every declared secret has a case below, so none escapes the round trips.
    assert {model for model, _, _ in declared()} <= set(CASES)


def masked(marker: str) -> bool:
    try:
        from airflow.sdk.log import redact
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import redact
    return marker not in str(redact(f"value {marker}"))


VARIANTS = ("parsed", "cut short", "wrong shape", "error answer")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("model", "field", "how"), list(declared()), ids=lambda x: getattr(x, "__name__", str(x)))
def test_a_declared_secret_reaches_no_log_error_or_event(
    hostile: HostileServer,  # noqa: F811 (the fixture)
    caplog: pytest.LogCaptureFixture,
    model: type,
    field: str,
    how: Secret,
    variant: str,
) -> None:
    case = CASES[model]
    # One marker per case: Airflow's masker is process-wide, and an earlier case's must not count.
    marker = MARKER + re.sub(r"\W", "", f"{model.__name__}{field}{variant}")
    answer = case.answer(field.partition("[")[0], value_for(how, marker))
    body = json.dumps(answer).encode()
    status = 200
    if variant == "cut short":
        body = body[: len(body) - 3]
    elif variant == "wrong shape":
        body = json.dumps([answer]).encode()
    elif variant == "error answer":
        status = 400

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method != case.method:  # create lists the prediction APIs first
            return web.json_response({"classifiers": []})
        return web.Response(status=status, body=body, content_type="application/json")

    hostile.routes[PREFIX + case.path] = handler
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    if variant != "parsed":
        with pytest.raises(ApiError) as raised:
            case.sync(PredictionOneHook())
        texts += [str(raised.value), repr(raised.value), *getattr(raised.value, "__notes__", [])]
    else:
        result = case.sync(PredictionOneHook())
        assert marker in repr(dataclasses.asdict(result) if dataclasses.is_dataclass(result) else result) or (
            marker in str(result)
        ), "the case did not put the marker where the model reads it"
        assert masked(marker), f"{model.__name__}.{field} was read but not registered with the secrets masker"
        if dataclasses.is_dataclass(result):
            assert marker not in repr(result)
    if case.trigger is not None:
        event = asyncio.run(asyncio.wait_for(case.trigger().run().__anext__(), 10))
        texts.append(json.dumps(event.payload, default=str))
    texts += [record.getMessage() for record in caplog.records]
    leaks = [text for text in texts if marker in text]
    assert not leaks, f"{model.__name__}.{field} ({variant}) leaked: {leaks}"
