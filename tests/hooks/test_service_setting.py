"""
The connection's *Service* is checked also when *Host* points elsewhere (the emulator, a
proxy): it names the service in asset URIs, so a typo would emit events for a service no
production DAG listens to (issue 26: ``"service": "global"`` went green as
``predone://global/models/2``).
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from helpers import predone_connection

from airflow_provider_predone.assets import model_uri
from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.hooks.predone import PredictionOneHook

ALLOWED = "['easy_predictive_analytics', 'prediction_one']"


def test_a_service_typo_fails_with_the_emulator_host_naming_the_extra_and_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TYPO", predone_connection("http://127.0.0.1:8765", service="global"))
    expected = re.escape(f"Connection 'typo': the connection extra service must be one of {ALLOWED}, got 'global'")
    with pytest.raises(InvalidInputError, match=expected):
        _ = PredictionOneHook("typo").connection_info

    async def resolve() -> None:  # the triggers' and the scorer's side resolves it the same way
        async with PredictionOneHook("typo").async_client():
            pass

    with pytest.raises(InvalidInputError, match=expected):
        asyncio.run(resolve())


@pytest.mark.parametrize("service", ["prediction_one", "easy_predictive_analytics"])
def test_each_allowed_service_works_with_a_host_and_names_the_asset_uris(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SVC", predone_connection("http://127.0.0.1:8765", service=service))
    info = PredictionOneHook("svc").connection_info
    assert info.settings.base_url == "http://127.0.0.1:8765/v1/external"
    assert model_uri(info.service, 2) == f"predone://{service}/models/2"


def test_no_service_means_prediction_one_with_or_without_a_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BARE",
        json.dumps({"conn_type": "predone", "host": "http://127.0.0.1:8765", "password": "x"}),
    )
    assert PredictionOneHook("bare").connection_info.service == "prediction_one"


def test_the_test_connections_set_the_service_as_production_does() -> None:
    """The suite's emulator connections (like the docs') name the service, so asset URIs in
    development are those of production."""
    assert json.loads(predone_connection("http://127.0.0.1:1"))["extra"]["service"] == "prediction_one"


def test_every_predone_connection_the_docs_and_the_demo_show_sets_the_service() -> None:
    from helpers import REPO

    pages = [REPO / "README.md", REPO / "scripts" / "demo.py", *sorted((REPO / "docs").rglob("*.md"))]
    shown = 0
    for page in pages:
        text = page.read_text()
        for match in re.finditer(r'"conn_type": "predone"', text):
            shown += 1
            # the connection's JSON (or dict) follows within a few lines
            assert '"service": ' in text[match.start() : match.start() + 400], (
                f"{page.name}: {text[match.start() :][:200]}"
            )
    assert shown >= 5
