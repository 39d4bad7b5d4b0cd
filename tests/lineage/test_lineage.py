"""
OpenLineage: the lifecycle DAG run by ``airflow dags test`` with the OpenLineage provider and
its file transport, against the emulator; the events it writes are read back and checked.

A subprocess: the provider decides at plugin load whether it is enabled, so the transport must
be configured before Airflow starts, in a process of its own.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, REPO, airflow_home_environment, needs_newer_airflow, predone_connection, wait_for

from airflow_provider_predone import __version__, files, lineage
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.hooks.predone import PredictionOneHook

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SERVICE = "predone://prediction_one"
#: the custom facets: their key in an event, their schema (file and definition) name, and where they sit
CUSTOM_FACETS = {"predone_model": lineage.MODEL_FACET, "predone_job": lineage.JOB_FACET}
SCHEMAS = REPO / "airflow_provider_predone" / "openlineage_schemas"
#: OpenLineage 2-0-2's BaseFacet, DatasetFacet and RunFacet, the definitions the custom facets'
#: schemas build on (restated from spec/OpenLineage.json: the client does not install the spec
#: document, and the tests run offline)
OPENLINEAGE_SPEC = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
    "$defs": {
        "BaseFacet": {
            "type": "object",
            "properties": {
                "_producer": {"type": "string", "format": "uri"},
                "_schemaURL": {"type": "string", "format": "uri"},
            },
            "additionalProperties": True,
            "required": ["_producer", "_schemaURL"],
        },
        "DatasetFacet": {
            "type": "object",
            "allOf": [
                {"$ref": "#/$defs/BaseFacet"},
                {"type": "object", "properties": {"_deleted": {"type": "boolean"}}},
            ],
        },
        "RunFacet": {"type": "object", "allOf": [{"$ref": "#/$defs/BaseFacet"}]},
    },
}


def _facet_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return schema


def _facet_errors(key: str, facet: dict[str, Any]) -> list[str]:
    """What is wrong with custom facet ``facet`` (under ``key`` in an event), by its JSON Schema file."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    name = CUSTOM_FACETS[key]
    schema = _facet_schema(name)
    registry = Registry().with_resources(
        [
            (OPENLINEAGE_SPEC["$id"], Resource.from_contents(OPENLINEAGE_SPEC)),
            (schema["$id"], Resource.from_contents(schema)),
        ]
    )
    validator = Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{key}: {error.message}" for error in validator.iter_errors({key: facet})]
    if facet.get("_schemaURL") != f"{schema['$id']}#/$defs/{name}":  # the schema file's $id, at the facet
        errors.append(f"{key}: _schemaURL {facet.get('_schemaURL')!r} is not {schema['$id']}#/$defs/{name}")
    return errors


def _custom_facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every custom facet of an event (or of an OperatorLineage as a dict): its datasets' and its run's."""
    datasets = [*event.get("inputs", []), *event.get("outputs", [])]
    facets = [*(d.get("facets") or {} for d in datasets), (event.get("run") or {}).get("facets") or {}]
    facets.append(event.get("run_facets") or {})
    return [(key, facet[key]) for facet in facets for key in CUSTOM_FACETS if key in facet]


def _environment(home: Path, emulator: EmulatorProcess, events: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(airflow_home_environment(home))
    env["AIRFLOW_CONN_PREDONE_DEFAULT"] = predone_connection(emulator.url, retry_wait_seconds=0.05)
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps({"type": "file", "log_file_path": str(events), "append": True})
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "predone-tests"
    return env


#: prints the import errors of a parse of the DAGs folder, as Airflow's DAG processor parses it
IMPORT_ERRORS = (
    "import json\n"
    "try:\n"
    "    from airflow.dag_processing.dagbag import DagBag\n"
    "except ImportError:  # Airflow < 3.1\n"
    "    from airflow.models.dagbag import DagBag\n"
    "print('IMPORT_ERRORS', json.dumps(DagBag().import_errors))\n"
)


def _import_errors(env: dict[str, str]) -> dict[str, str]:
    """
    The DAG files that fail to parse with this environment's listeners (the OpenLineage
    provider's among them), but for the examples that need a newer Airflow.
    """
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_ERRORS], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [line] = [line for line in run.stdout.splitlines() if line.startswith("IMPORT_ERRORS ")]
    errors: dict[str, str] = json.loads(line.removeprefix("IMPORT_ERRORS "))
    return {path: error for path, error in errors.items() if not needs_newer_airflow(path, error)}


def _complete_events(events: Path) -> dict[str, dict[str, Any]]:
    """The COMPLETE event of each task, by task id (the job name is ``<dag_id>.<task_id>``)."""
    found = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("eventType") == "COMPLETE" and "." in event["job"]["name"]:
            found[event["job"]["name"].split(".", 1)[1]] = event
    return found


def _datasets(event: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {f"{d['namespace']}/{d['name']}": d for d in event[kind]}


@pytest.mark.timeout(600)
def test_lifecycle_lineage_from_data_to_scored_file(emulator: EmulatorProcess, tmp_path: Path) -> None:
    events, output = tmp_path / "events.jsonl", tmp_path / "output"
    env = _environment(tmp_path / "home", emulator, events)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300, cwd=REPO)
    assert _import_errors(env) == {}  # every DAG file parses with the OpenLineage listener registered
    run = subprocess.run(
        [AIRFLOW, "dags", "test", "predone_lifecycle", "--conf", json.dumps({"output_dir": str(output)})],
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    complete = _complete_events(events)
    assert {"train", "deploy", "score_before", "retrain", "switch", "score_after"} <= set(complete)

    # train: the training and evaluation CSVs (columns, rows) -> the model with its metrics
    train = complete["train"]
    inputs = _datasets(train, "inputs")
    train_csv = inputs[f"file/{DATA / 'train.csv'}"]
    header = (DATA / "train.csv").read_text().splitlines()[0].split(",")
    assert [f["name"] for f in train_csv["facets"]["schema"]["fields"]] == header
    rows = len((DATA / "train.csv").read_text().splitlines()) - 1
    assert train_csv["inputFacets"]["inputStatistics"]["rowCount"] == rows
    assert f"file/{DATA / 'eval.csv'}" in inputs
    model = _datasets(train, "outputs")[f"{SERVICE}/models/1"]
    assert model["facets"]["predone_model"]["metrics"]["auc"] > 0.5
    assert train["run"]["facets"]["predone_job"]["details"]["external_process_id"]

    # deploy: the model -> the prediction API
    deploy = complete["deploy"]
    assert set(_datasets(deploy, "inputs")) == {f"{SERVICE}/models/1"}
    [api] = _datasets(deploy, "outputs")
    assert api.startswith(f"{SERVICE}/prediction_apis/")

    # score: the prediction API and the input CSV -> the scored file (columns, rows)
    score = complete["score_after"]
    assert set(_datasets(score, "inputs")) == {api, f"file/{DATA / 'score.csv'}"}
    scored = _datasets(score, "outputs")[f"file/{output / 'predictions_after.csv'}"]
    assert scored["outputFacets"]["outputStatistics"]["rowCount"] == 500
    assert "row_number" in [f["name"] for f in scored["facets"]["schema"]["fields"]]

    # retrain: the new month's data -> the model, with both sets of metrics and the job id
    retrain = complete["retrain"]
    assert f"file/{DATA / 'new_month.csv'}" in _datasets(retrain, "inputs")
    retrained = _datasets(retrain, "outputs")[f"{SERVICE}/models/1"]["facets"]["predone_model"]
    job_id = retrain["run"]["facets"]["predone_job"]["details"]["retrain_job_id"]
    assert retrained["retrain_job_id"] == job_id
    assert retrained["metrics"]["auc"] > retrained["previous_metrics"]["auc"]

    # switch: the retrained model -> what the prediction APIs serve, with the gate's verdict
    switch = complete["switch"]
    assert _datasets(switch, "inputs")[f"{SERVICE}/models/1"]["facets"]["predone_model"]["retrain_job_id"] == job_id
    assert set(_datasets(switch, "outputs")) == {f"{SERVICE}/models/1/serving"}
    details = switch["run"]["facets"]["predone_job"]["details"]
    assert details["switched"] is True
    assert details["quality_gate"]["verdict"] == "accepted"

    # every custom facet of every event holds to its JSON Schema and names it in _schemaURL
    checked = [(task, key, facet) for task, event in complete.items() for key, facet in _custom_facets(event)]
    assert {key for _, key, _ in checked} == set(CUSTOM_FACETS)
    assert {"train", "deploy", "score_after", "retrain", "switch"} <= {task for task, _, _ in checked}
    assert [error for task, key, facet in checked for error in _facet_errors(key, facet)] == []


@pytest.mark.timeout(600)
def test_operators_work_and_nothing_imports_openlineage_without_the_provider(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    # `airflow dags test` in an interpreter where OpenLineage cannot be imported, as when the extra
    # is not installed (the provider's package stays: Airflow's provider discovery reads it).
    blocked = ("openlineage", "airflow.providers.openlineage.extractors", "airflow.providers.openlineage.plugins")
    code = (
        "import atexit, sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "atexit.register(lambda: print('IMPORTED', sorted(m for m in sys.modules if m.startswith('openlineage')"
        " and sys.modules[m] is not None)))\n"
        "from airflow.__main__ import main\n"
        "sys.argv = ['airflow', 'dags', 'test', 'predone_train', '--conf', sys.argv[1]]\n"
        "main()\n"
    )
    env = _environment(tmp_path / "home", emulator, tmp_path / "events.jsonl")
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300, cwd=REPO)
    conf = json.dumps({"result_dir": str(tmp_path / "result")})
    run = subprocess.run(
        [sys.executable, "-c", code, conf], env=env, capture_output=True, text=True, timeout=480, cwd=REPO
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "IMPORTED []" in run.stdout
    assert emulator.state()["trainings_started"] == 1
    assert list((tmp_path / "result").glob("*/model_summary.json"))  # the task ran to its end
    assert not (tmp_path / "events.jsonl").exists()  # nothing was emitted


def _start_training(hook: PredictionOneHook, target: str) -> str:
    urls = hook.get_upload_urls()
    hook.upload(urls.learn_data_set_upload_url, files.resolve("train_data", DATA / "train.csv"), label="train")
    hook.create_model(urls.external_process_id, "sensor", {"tc": target, "tt": "binary_classification", "tv": "yes"})
    return urls.external_process_id


@pytest.mark.timeout(600)
def test_sensors_with_end_from_trigger_parse_and_end_on_a_worker_with_openlineage(
    connections: EmulatorProcess, tmp_path: Path
) -> None:
    # Airflow refuses end_from_trigger=True at DAG parse while a listener is registered; the
    # sensors end on a worker instead, so OpenLineage sees them end, with one warning per task run.
    connections.configure(job_seconds=600.0)  # both end when the test says (finish_jobs)
    hook = PredictionOneHook()
    finished, failed = _start_training(hook, "purchased_premium"), _start_training(hook, "missing_column")
    events, home, log = tmp_path / "events.jsonl", tmp_path / "home", tmp_path / "dags_test.log"
    env = _environment(home, connections, events)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300, cwd=REPO)
    assert _import_errors(env) == {}
    conf = json.dumps({"finished": finished, "failed": failed})
    with log.open("w") as out:
        run = subprocess.Popen(
            [AIRFLOW, "dags", "test", "predone_sensors_ended_in_trigger", "--conf", conf],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            wait_for(
                "the first sensor to defer",
                lambda: any("Pausing task as DEFERRED" in line and "task_id=finished" in line for line in _lines(log)),
                timeout=300,
            )
            connections.finish_jobs()  # 'finished' resumes from its trigger; 'failed' fails at its first poke
            run.wait(timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
    output = log.read_text()
    with sqlite3.connect(home / "airflow.db") as db:
        states = dict(db.execute("SELECT task_id, state FROM task_instance").fetchall())
        [(xcom,)] = db.execute("SELECT value FROM xcom WHERE task_id = 'finished' AND key = 'return_value'").fetchall()
    assert states == {"finished": "success", "failed": "failed"}, output[-3000:]
    # resumed on a worker with the trigger's event (a task its trigger ended has job_status None)
    assert json.loads(xcom) == {"external_process_id": finished, "status": "success", "job_status": "finished"}
    ends = {
        event["job"]["name"].split(".", 1)[1]: event["eventType"]
        for event in map(json.loads, events.read_text().splitlines())
        if event["eventType"] in ("COMPLETE", "FAIL") and "." in event["job"]["name"]
    }
    assert ends == {"finished": "COMPLETE", "failed": "FAIL"}  # the listener saw both tasks end
    warnings = [line for line in output.splitlines() if "ends on a worker, not in the triggerer" in line]
    assert warnings, output[-3000:]
    assert all("'finished'" in line and "end_from_trigger=False" in line for line in warnings)
    # one record ('failed' never deferred); Airflow 3.0.6's dags test prints it through two handlers
    assert len({_time(line) for line in warnings}) == 1, warnings


class _Listener:
    """A listener with no hooks: being registered is what makes Airflow refuse end_from_trigger."""


SENSOR_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_provider_predone.sensors.predone import PredictionOneTrainSensor
with DAG(dag_id="start_and_end_in_trigger", schedule=None, start_date=datetime(2026, 1, 1)):
    PredictionOneTrainSensor(task_id="wait", external_process_id="p1", start_from_trigger=True, end_from_trigger=True)
"""


def test_start_and_end_from_trigger_with_a_listener_registered(
    airflow_db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process, so the trigger's kwargs (serialised at parse) are seen as the scheduler sees them.
    from airflow.listeners.listener import get_listener_manager
    from helpers import load_dag

    from airflow_provider_predone.sensors.predone import PredictionOneTrainSensor

    (tmp_path / "start_and_end_in_trigger.py").write_text(SENSOR_DAG)
    listener, manager = _Listener(), get_listener_manager()
    manager.add_listener(listener)
    try:
        sensor = load_dag(tmp_path, "start_and_end_in_trigger").get_task("wait")  # no import error
        assert sensor.end_from_trigger is False
        assert sensor.end_from_trigger_overridden_by == ["_Listener"]
        assert sensor.start_trigger_args.trigger_kwargs["end_from_trigger"] is False
        capsys.readouterr()
        event = {"status": "success", "external_process_id": "p1", "job_status": "finished", "message": "done"}
        assert sensor.execute_complete({}, event)["job_status"] == "finished"
        out = capsys.readouterr()
        assert (out.out + out.err).count("ends on a worker, not in the triggerer") == 1
    finally:
        manager.pm.unregister(listener)
    again = PredictionOneTrainSensor(
        task_id="w", external_process_id="p1", start_from_trigger=True, end_from_trigger=True
    )
    assert again.end_from_trigger is True  # without a listener, the trigger ends the task
    assert again.start_trigger_args.trigger_kwargs["end_from_trigger"] is True


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _time(line: str) -> str:
    """A log line's time to the millisecond, whichever of Airflow's formats printed it."""
    found = re.search(r"\d\d:\d\d:\d\d[.,]\d{3}", line)
    assert found, line
    return found.group().replace(",", ".")


def test_object_storage_and_local_files_as_openlineage_datasets(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_provider_predone.lineage import input_file, location_name

    attach(protocol="memory", fs=MemoryFileSystem())  # fsspec's in-process filesystem
    stored = ObjectStoragePath("memory://bucket/in/train.csv")
    stored.write_bytes((DATA / "train.csv").read_bytes())
    assert location_name(stored) == ("memory://bucket", "in/train.csv")
    assert location_name("s3://bucket/month/scores.csv") == ("s3://bucket", "month/scores.csv")
    assert location_name(f"file://{tmp_path}/a.csv") == ("file", f"{tmp_path}/a.csv")
    dataset = input_file(stored)
    header = (DATA / "train.csv").read_text().splitlines()[0].split(",")
    assert [f.name for f in dataset.facets["schema"].fields] == header
    assert dataset.inputFacets == {}  # object storage is not downloaded again to count rows
    local = input_file(DATA / "train.csv")
    assert (local.namespace, local.name) == ("file", str(DATA / "train.csv"))
    assert local.inputFacets["inputStatistics"].rowCount == len((DATA / "train.csv").read_text().splitlines()) - 1


# --- the custom facets' JSON Schemas ---------------------------------------------------------------


def test_facet_schemas_are_json_schemas_named_for_this_version() -> None:
    from jsonschema import Draft202012Validator

    assert sorted(path.stem for path in SCHEMAS.glob("*.json")) == sorted(CUSTOM_FACETS.values())
    for key, name in CUSTOM_FACETS.items():
        schema = _facet_schema(name)
        Draft202012Validator.check_schema(schema)
        # as OpenLineage's own facet schemas: the facet in $defs, on OpenLineage's base facet, under its key
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"] == {key: {"$ref": f"#/$defs/{name}"}}
        base = "DatasetFacet" if name.endswith("DatasetFacet") else "RunFacet"
        assert schema["$defs"][name]["allOf"][0] == {"$ref": f"{OPENLINEAGE_SPEC['$id']}#/$defs/{base}"}
        # a versioned, location-independent identifier: the package URL of this release (docs/lineage.md)
        assert schema["$id"] == f"pkg:pypi/airflow-provider-predone@{__version__}?schema={name}"
        assert lineage.schema_url(name) == f"{schema['$id']}#/$defs/{name}"
        assert lineage.facet_schema(name) == schema  # what the package reads is the file in the repository


def test_facet_schemas_refuse_what_they_do_not_describe() -> None:
    url = lineage.schema_url(lineage.MODEL_FACET)
    model = {"_producer": "https://example.org/producer", "_schemaURL": url, "model_id": 3, "metrics": {"auc": 0.8}}
    assert _facet_errors("predone_model", model) == []
    assert _facet_errors("predone_model", {**model, "model_id": "3"})
    assert _facet_errors("predone_model", {**model, "metrics": {"auc": "high"}})
    assert _facet_errors("predone_model", {k: v for k, v in model.items() if k != "_producer"})
    assert _facet_errors("predone_model", {**model, "_schemaURL": "https://example.org/lineage.html#predone-model"})
    job = {"_producer": "https://example.org/producer", "_schemaURL": lineage.schema_url(lineage.JOB_FACET)}
    assert _facet_errors("predone_job", {**job, "details": {"retrain_job_id": "r1", "switched": True}}) == []
    assert _facet_errors("predone_job", {**job, "details": {"undocumented": 1}})
    assert _facet_errors("predone_job", {**job, "details": {"quality_gate": {"verdict": "maybe", "reason": ""}}})


# --- each operator says its own lineage --------------------------------------------------------------


class _TaskInstance:
    """What the operators read of a task instance when run in this process (ids, XCom)."""

    def __init__(self, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "lineage", f"run-{task_id}", task_id, -1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class _TaskStateStore(dict[str, Any]):
    """Airflow 3.3's ``task_state_store``, for the retry records."""

    def set(self, name: str, value: Any) -> None:
        self[name] = value

    def delete(self, name: str) -> None:
        self.pop(name, None)


def _run(operator: Any) -> Any:
    """Run ``operator`` to its end in this process, against the emulator (waiting on the worker)."""
    ti = _TaskInstance(operator.task_id)
    return operator.execute({"ti": ti, "task_instance": ti, "task_state_store": _TaskStateStore()})


def _as_event(operator_lineage: Any) -> dict[str, Any]:
    """An OperatorLineage as the OpenLineage provider writes it into an event (its serde)."""
    from openlineage.client.serde import Serde

    return {
        "inputs": [Serde.to_dict(d) for d in operator_lineage.inputs],
        "outputs": [Serde.to_dict(d) for d in operator_lineage.outputs],
        "run_facets": {k: Serde.to_dict(v) for k, v in operator_lineage.run_facets.items()},
    }


@pytest.mark.timeout(300)
def test_each_operator_reports_its_lineage_whatever_its_class_is_called(
    connections: EmulatorProcess, tmp_path: Path
) -> None:
    from airflow_provider_predone.operators.predone import (
        PredictionOneBatchPredictOperator,
        PredictionOneCreatePredictionApiOperator,
        PredictionOneListModelsOperator,
        PredictionOneRetrainOperator,
        PredictionOneSwitchModelOperator,
        PredictionOneTrainOperator,
        metric_gate,
    )

    fast = {"poll_interval": 0.1, "timeout": 60, "deferrable": False}
    config = {"tc": "purchased_premium", "tt": "binary_classification", "tv": "yes"}
    operators = {
        "train": PredictionOneTrainOperator(
            task_id="train", train_data=str(DATA / "train.csv"), model_name="m", config=config, **fast
        )
    }
    model_id = _run(operators["train"])["model_id"]
    operators["deploy"] = PredictionOneCreatePredictionApiOperator(task_id="deploy", model_id=model_id, **fast)
    classifier_id = _run(operators["deploy"])["classifier_id"]
    output = tmp_path / "scored.csv"
    operators["score"] = PredictionOneBatchPredictOperator(
        task_id="score", classifier_id=classifier_id, input_data=str(DATA / "score.csv"), output_data=str(output)
    )
    _run(operators["score"])
    operators["retrain"] = PredictionOneRetrainOperator(
        task_id="retrain", model_id=model_id, train_data=str(DATA / "new_month.csv"), **fast
    )
    retrain_job_id = _run(operators["retrain"])["retrain_job_id"]
    operators["switch"] = PredictionOneSwitchModelOperator(
        task_id="switch", retrain_job_id=retrain_job_id, model_id=model_id, quality_gate=metric_gate("auc")
    )
    _run(operators["switch"])
    # A class renamed (or one the lineage code never heard of) keeps its lineage: it is the class's own.
    renamed = (PredictionOneTrainOperator, PredictionOneRetrainOperator, PredictionOneSwitchModelOperator)
    try:
        for cls in renamed:
            cls.__name__ = f"Renamed{cls.__name__}"
        events = {task: _as_event(op.get_openlineage_facets_on_complete(None)) for task, op in operators.items()}
    finally:
        for cls in renamed:
            cls.__name__ = cls.__name__.removeprefix("Renamed")

    model = f"{SERVICE}/models/{model_id}"
    assert [f"{d['namespace']}/{d['name']}" for d in events["train"]["outputs"]] == [model]
    assert events["train"]["outputs"][0]["facets"]["predone_model"]["metrics"]["auc"] > 0.5
    assert events["train"]["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] > 0
    assert [d["name"] for d in events["deploy"]["outputs"]] == [f"prediction_apis/{classifier_id}"]
    scored = events["score"]["outputs"][0]
    assert (scored["namespace"], scored["name"]) == ("file", str(output))
    assert scored["outputFacets"]["outputStatistics"]["rowCount"] == 500
    assert events["retrain"]["run_facets"]["predone_job"]["details"]["retrain_job_id"] == retrain_job_id
    assert [f"{d['namespace']}/{d['name']}" for d in events["switch"]["outputs"]] == [f"{model}/serving"]
    assert events["switch"]["run_facets"]["predone_job"]["details"]["quality_gate"]["verdict"] == "accepted"
    checked = [(key, facet) for event in events.values() for key, facet in _custom_facets(event)]
    assert len(checked) >= 8
    assert [error for key, facet in checked for error in _facet_errors(key, facet)] == []

    # an operator that reads or writes no dataset says so (an empty lineage, as before), and one
    # that has not finished reports nothing
    listing = PredictionOneListModelsOperator(task_id="list")
    _run(listing)
    assert _as_event(listing.get_openlineage_facets_on_complete(None)) == {
        "inputs": [],
        "outputs": [],
        "run_facets": {},
    }
    unfinished = PredictionOneTrainOperator(task_id="t", train_data="x.csv", model_name="m", config=config)
    assert _as_event(unfinished.get_openlineage_facets_on_complete(None)) == {
        "inputs": [],
        "outputs": [],
        "run_facets": {},
    }
