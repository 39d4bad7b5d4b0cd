"""
The "Models" page (``airflow_provider_predone.plugins``), served by Airflow's own Core API app
in this process (the app the api-server serves, plugins mounted from the provider metadata)
over the asset events and XComs of real DAG runs against the emulator:

the lifecycle example (trained, then a retraining the gate accepts: switched), the approval
example twice (approved, then rejected, by the Core API's user, Airflow 3.1+), and a retraining
the gate refuses. The browser test of the same page is ``scripts/e2e_models_page.py``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from airflow import __version__ as AIRFLOW_VERSION
from helpers import EMULATOR_OPTIONS, EXAMPLES, aitems_connection, predone_connection, run_dag, wait_for

from airflow_provider_predone.emulator import EmulatorProcess

try:
    import airflow.providers.standard.operators.hitl  # noqa: F401
except Exception:  # Airflow 3.0
    HITL = False
else:
    HITL = True

#: The reviews answer through 3.3's human-in-the-loop REST API, under dag.test() (3.1.8's fails there).
REVIEWS = HITL and tuple(int(n) for n in AIRFLOW_VERSION.split(".")[:2]) >= (3, 3)
#: Airflow 3.0 has no UI plugins (external views) and no cookie login for plugin apps: the page needs 3.1
needs_page = pytest.mark.skipif(not HITL, reason="the Models page needs Airflow 3.1+")
PLUGIN_DAGS = Path(__file__).resolve().parent / "dags"
#: a service no other test names, so this module's models have URIs of their own in the shared database
SERVICE = "easy_predictive_analytics"
APPROVAL_DAG, APPROVAL_TASK = "predone_retrain_with_approval", "approve_and_switch"
POINT = re.compile(r'<g class="point [^"]*" data-kind="([^"]*)" data-outcome="([^"]*)" data-value="([^"]*)"')
VERSION = re.compile(r'<g class="point [^"]*" [^>]*data-version="([^"]*)"')


@dataclass
class Runs:
    model_id: int
    uri: str
    lifecycle: Any
    refused: Any
    approved: Any = None
    rejected: Any = None
    aitems: Any = None


def _answer_approval(choice: str, errors: list[BaseException]) -> None:
    """Answer the pending approval through Airflow's Core API, as the "Required actions" page does."""
    try:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        client = TestClient(create_app("core"), raise_server_exceptions=False)

        def pending() -> dict[str, Any] | None:
            answer = client.get("/api/v2/dags/~/dagRuns/~/hitlDetails", params={"dag_id": APPROVAL_DAG})
            if answer.status_code >= 500:  # sqlite busy while the run writes: ask again
                return None
            waiting = [d for d in answer.json()["hitl_details"] if not d["response_received"]]
            return waiting[0] if waiting else None

        request = wait_for("the approval request", pending, timeout=240, interval=0.5)
        run_id = request["task_instance"]["dag_run_id"]
        path = f"/api/v2/dags/{APPROVAL_DAG}/dagRuns/{run_id}/taskInstances/{APPROVAL_TASK}/-1/hitlDetails"
        answer = client.patch(path, json={"chosen_options": [choice], "params_input": {}})
        assert answer.status_code == 200, answer.text
    except BaseException as error:
        errors.append(error)


def _with_reviewer(choice: str, model_id: int) -> Any:
    errors: list[BaseException] = []
    reviewer = threading.Thread(target=_answer_approval, args=(choice, errors), daemon=True)
    reviewer.start()
    result = run_dag(EXAMPLES, APPROVAL_DAG, model_id=model_id)
    reviewer.join(5)
    assert not errors, errors
    return result


@pytest.fixture(scope="module")
def runs(
    emulator_process: EmulatorProcess, airflow_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    from airflow_provider_predone.hooks.predone import API_KEYS

    emulator_process.reset()
    emulator_process.configure(fault_rate=0.0, inference_latency_ms=0, **EMULATOR_OPTIONS)
    API_KEYS.clear()
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if not (dags_folder / "plugin_dags").exists():  # dag.test() runs only DAGs of the DAGs folder
        (dags_folder / "plugin_dags").symlink_to(PLUGIN_DAGS, target_is_directory=True)
    fast = {"retry_wait_seconds": 0.05, "retry_max_wait_seconds": 0.5}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator_process.url, service=SERVICE, **fast))
        # The in-process Core API answering the approvals lets every request in as an admin.
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        lifecycle = run_dag(EXAMPLES, "predone_lifecycle", output_dir=str(tmp_path_factory.mktemp("lifecycle")))
        assert set(lifecycle.states.values()) == {"success"}, lifecycle.states
        model_id = int(lifecycle.xcom("train")["model_id"])
        found = Runs(model_id, f"predone://{SERVICE}/models/{model_id}", lifecycle, refused=None)
        if REVIEWS:
            found.approved = _with_reviewer("Approve", model_id)
            found.rejected = _with_reviewer("Reject", model_id)
            assert found.rejected.states[APPROVAL_TASK] == "skipped"
        found.refused = run_dag(PLUGIN_DAGS, "predone_models_page_refused", model_id=model_id)
        assert found.refused.states == {"retrain": "success", "switch": "skipped"}
        patch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(emulator_process.url, **fast))
        found.aitems = run_dag(EXAMPLES, "aitems_train")
        assert set(found.aitems.states.values()) == {"success"}, found.aitems.states
        yield found
        from airflow.api_fastapi.app import purge_cached_app

        purge_cached_app()


@pytest.fixture
def client(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Airflow's Core API app with the provider's plugins, behind an auth manager that denies things."""
    import restricted_auth
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", "restricted_auth.RestrictedAuthManager")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setattr(restricted_auth, "HIDDEN_DAGS", {"predone_lifecycle"})
    purge_cached_app()
    yield TestClient(create_app("core"), follow_redirects=False)
    purge_cached_app()


def _token(username: str, role: str) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))
    return {"Authorization": f"Bearer {token}"}


def _section(html: str, uri: str) -> str:
    start = html.index(f'data-uri="{uri}"')
    end = html.find("</section>", start)
    return html[start:end]


@needs_page
def test_without_credentials_the_page_and_the_task_redirect_are_refused(client: Any) -> None:
    assert client.get("/predone-models/").status_code == 401
    answer = client.get("/predone-models/task", params={"dag_id": "x", "run_id": "y", "task_id": "z"})
    assert answer.status_code == 401
    assert client.get("/predone-models/", headers={"Authorization": "Bearer not-a-token"}).status_code in (401, 403)


@needs_page
def test_page_charts_one_point_per_retraining_marked_by_outcome(client: Any, runs: Runs) -> None:
    answer = client.get("/predone-models/", headers=_token("admin", "admin"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "private, no-store"
    section = _section(answer.text, runs.uri)
    points = POINT.findall(section)
    outcomes = [(kind, outcome) for kind, outcome, _ in points]
    expected = [("trained", "trained"), ("retrained", "switched")]
    if REVIEWS:
        expected += [("retrained", "approved"), ("retrained", "rejected")]
    expected.append(("retrained", "refused by the gate"))
    assert outcomes == expected
    assert all(value for _, _, value in points)  # every point has its gate metric
    # Versions from the asset events: the training's, each retraining's (refused ones too).
    assert VERSION.findall(section) == [str(v) for v in range(1, len(expected) + 1)]
    retrained = runs.lifecycle.xcom("retrain")
    assert f'data-value="{retrained["metrics"]["auc"]}"' in section
    # The version served: the lifecycle's switch, or the approved switch after it (version 3).
    served = int(re.search(r'data-served-version="(\d+)"', section)[1])  # type: ignore[index]
    assert served == (3 if REVIEWS else 2)
    assert f'class="served-version">{served}<' in section
    assert "gate metric: <strong>auc</strong>" in section
    # The refusal's reason, and who rejected and when.
    rows = re.findall(r'<tr class="run".*?</tr>', section)
    refused = next(row for row in rows if 'data-outcome="refused by the gate"' in row)
    assert "gate: auc" in refused
    assert "min_gain 1.0" in refused
    if REVIEWS:
        approval = runs.rejected.xcom(APPROVAL_TASK)["approval"]
        rejected = next(row for row in rows if 'data-outcome="rejected"' in row)
        assert f"by {approval['by']}" in rejected
        answered = datetime.fromisoformat(approval["at"]).astimezone(UTC)
        assert f"at {answered:%Y-%m-%d %H:%M} UTC" in rejected
        approved = next(row for row in rows if 'data-outcome="approved"' in row)
        assert f"by {runs.approved.xcom(APPROVAL_TASK)['approval']['by']}" in approved


@needs_page
def test_table_has_both_models_metrics_rows_scored_and_links(client: Any, runs: Runs) -> None:
    section = _section(client.get("/predone-models/", headers=_token("admin", "admin")).text, runs.uri)
    retrained = runs.lifecycle.xcom("retrain")
    rows = re.findall(r'<tr class="run".*?</tr>', section)
    switched = next(row for row in rows if 'data-outcome="switched"' in row)
    assert f"{retrained['metrics']['auc']:.4g}" in switched
    assert f"{retrained['previous_metrics']['auc']:.4g}" in switched
    scored = runs.lifecycle.xcom("score_after")["rows_scored"]
    assert f'data-label="Rows scored" class="num">{scored:,}' in switched
    trained = next(row for row in rows if 'data-outcome="trained"' in row)
    assert f'class="num">{runs.lifecycle.xcom("score_before")["rows_scored"]:,}' in trained
    run_id = runs.lifecycle.dag_run.run_id
    assert f'href="/dags/predone_lifecycle/runs/{quote(run_id, safe="")}"' in switched
    assert f'/runs/{quote(run_id, safe="")}/tasks/retrain"' in switched
    assert 'target="_top"' in switched
    assert "predone-demo-secret-key" not in section


@needs_page
def test_aitems_trainings_are_listed_with_their_versions(client: Any, runs: Runs) -> None:
    html = client.get("/predone-models/", headers=_token("admin", "admin")).text
    trained = runs.aitems.xcom("train")
    run_id = quote(runs.aitems.dag_run.run_id, safe="")
    for train_type, version in trained["versions"].items():
        section = _section(html, f"aitems://{trained['service_id']}/{train_type}")
        assert f'<td data-label="Version">{version}</td>' in section
        assert f"/dags/aitems_train/runs/{run_id}/tasks/train" in section
        assert "<svg" not in section  # no metric to chart


@needs_page
def test_a_user_who_cannot_read_a_dag_sees_nothing_of_it(client: Any, runs: Runs) -> None:
    outsider = _token("outsider", "viewer")
    answer = client.get("/predone-models/", headers=outsider)
    assert answer.status_code == 200
    section = _section(answer.text, runs.uri)
    assert "predone_lifecycle" not in answer.text
    kinds = [(kind, outcome) for kind, outcome, _ in POINT.findall(section)]
    assert ("trained", "trained") not in kinds
    assert ("retrained", "switched") not in kinds
    assert ("retrained", "refused by the gate") in kinds  # its own DAGs stay visible
    lifecycle = runs.lifecycle.dag_run
    params = {"dag_id": "predone_lifecycle", "run_id": lifecycle.run_id, "task_id": "train"}
    assert client.get("/predone-models/task", params=params, headers=outsider).status_code == 403


@needs_page
def test_a_user_who_cannot_read_an_asset_sees_no_event_of_it(
    client: Any, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restricted_auth
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ids = session.scalars(select(AssetModel.id).where(AssetModel.uri.like(f"{runs.uri}%"))).all()
    assert len(ids) == 2  # the model and its serving
    monkeypatch.setattr(restricted_auth, "HIDDEN_DAGS", set())
    monkeypatch.setattr(restricted_auth, "HIDDEN_ASSETS", {str(i) for i in ids})
    answer = client.get("/predone-models/", headers=_token("outsider", "viewer"))
    assert answer.status_code == 200
    assert runs.uri not in answer.text  # the model is not listed: all its events are of those assets


@needs_page
def test_extra_link_of_each_task_leads_to_its_models_page(client: Any, runs: Runs) -> None:
    admin = _token("admin", "admin")
    tasks = [(runs.lifecycle, t) for t in ("train", "retrain", "switch", "score_before", "score_after")]
    tasks.append((runs.refused, "switch"))  # refused: no asset event, the model comes from its XCom
    if REVIEWS:
        tasks.append((runs.rejected, APPROVAL_TASK))
    for result, task_id in tasks:
        link = result.xcom(task_id, key="_link_ModelPageLink")
        assert link, f"{task_id} has no extra link"
        parts = urlsplit(link)
        assert parts.path == "/predone-models/task"
        assert parse_qs(parts.query)["task_id"] == [task_id]
        answer = client.get(f"{parts.path}?{parts.query}", headers=admin)
        assert answer.status_code == 303, (task_id, answer.text)
        assert parse_qs(urlsplit(answer.headers["location"]).query)["model"] == [runs.uri], task_id
    single = client.get(answer.headers["location"], headers=admin)
    assert single.status_code == 200
    assert single.text.count('<section class="model"') == 1


def test_the_operators_declare_the_link_and_the_provider_the_plugin() -> None:
    from airflow_provider_predone.get_provider_info import get_provider_info
    from airflow_provider_predone.operators import predone
    from airflow_provider_predone.plugins.links import ModelPageLink
    from airflow_provider_predone.plugins.models_page import PredoneModelsPlugin

    for operator in (
        predone.PredictionOneTrainOperator,
        predone.PredictionOneRetrainOperator,
        predone.PredictionOneSwitchModelOperator,
        predone.PredictionOneBatchPredictOperator,
    ):
        assert [type(link) for link in operator.operator_extra_links] == [ModelPageLink], operator
    if HITL:
        from airflow_provider_predone.operators.approval import PredictionOneApproveSwitchOperator

        assert [type(link) for link in PredictionOneApproveSwitchOperator.operator_extra_links] == [ModelPageLink]
    info = get_provider_info()
    assert info["extra-links"] == ["airflow_provider_predone.plugins.links.ModelPageLink"]
    assert info["plugins"][0]["plugin-class"].endswith(".PredoneModelsPlugin")
    prefix = PredoneModelsPlugin.fastapi_apps[0]["url_prefix"]
    assert not prefix.startswith(("/api/v2", "/ui", "/execution", "/auth", "/pluginsv2"))
    assert PredoneModelsPlugin.external_views[0]["name"] == "Models"
