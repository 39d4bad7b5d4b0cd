"""
OpenLineage for the Prediction One operators: training data → model → prediction API →
scored file.

The OpenLineage provider (``apache-airflow-providers-openlineage``, the ``openlineage`` extra)
calls ``get_openlineage_facets_on_complete(task_instance)`` on an operator after it succeeds.
Each operator that has lineage defines that method and hands the values its run kept (paths,
the service, ids, metrics, row counts) to one of the builders here (:func:`train_lineage`,
:func:`retrain_lineage`, :func:`prediction_api_lineage`, :func:`batch_predict_lineage`,
:func:`switch_lineage`). This module takes plain values only and imports no operator; it
imports OpenLineage only when a builder is called, so without the provider nothing of it is
imported.

Datasets (OpenLineage's naming: a namespace and a name):

* a local file: namespace ``file``, name its absolute path; object storage
  (``s3://bucket/key``, any ``ObjectStoragePath``): namespace ``s3://bucket``, name ``key``;
* a model: namespace ``predone://<service>``, name ``models/<model_id>`` — together the
  model's asset URI (:mod:`.assets`); what its prediction APIs serve: ``models/<id>/serving``;
* a prediction API: namespace ``predone://<service>``, name ``prediction_apis/<classifier_id>``.

Facets: the CSV columns (``schema``), row counts (input and output statistics), the model's
metrics and the job ids (``predone_model`` dataset facet, ``predone_job`` run facet). The two
custom facets are described by JSON Schemas shipped in the package
(``openlineage_schemas/<facet>.json``); their ``_schemaURL`` is the schema's ``$id`` with the
JSON Pointer to the facet's definition (see docs/lineage.md).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_predone import assets, files

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

#: the custom facets: their class names, also the names of their JSON Schema files and definitions
MODEL_FACET = "PredictionOneModelDatasetFacet"
JOB_FACET = "PredictionOneJobRunFacet"
#: the folder of the package holding the custom facets' JSON Schemas
SCHEMA_FOLDER = "openlineage_schemas"


@cache
def facet_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of custom facet ``name``, as shipped in the package."""
    text = resources.files("airflow_provider_predone").joinpath(SCHEMA_FOLDER, f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_url(name: str) -> str:
    """
    The ``_schemaURL`` of custom facet ``name``: its schema's ``$id`` (which names the package
    version) and the JSON Pointer to the facet's definition, as OpenLineage's own facets do.
    """
    return f"{facet_schema(name)['$id']}#/$defs/{name}"


@cache
def _facet_classes() -> tuple[type, type]:
    """The custom facets, defined on first use: their base classes come with the provider."""
    import attrs
    from openlineage.client.generated.base import DatasetFacet, RunFacet

    @attrs.define
    class PredictionOneModelDatasetFacet(DatasetFacet):  # type: ignore[misc]
        """A model's metrics (and those of the model served before it), and the job that made it."""

        model_id: int
        metrics: dict[str, Any] | None = None
        previous_metrics: dict[str, Any] | None = None
        retrain_job_id: str | None = None
        external_process_id: str | None = None

        @staticmethod
        def _get_schema() -> str:
            return schema_url(MODEL_FACET)

    @attrs.define
    class PredictionOneJobRunFacet(RunFacet):  # type: ignore[misc]
        """The vendor's job ids and outcomes of this run (ids, gate verdict, approval)."""

        details: dict[str, Any]

        @staticmethod
        def _get_schema() -> str:
            return schema_url(JOB_FACET)

    return PredictionOneModelDatasetFacet, PredictionOneJobRunFacet


def no_lineage() -> OperatorLineage[Any, Any]:
    """The lineage of a task that read or wrote no dataset OpenLineage names (or has not finished)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage()


# --- datasets -------------------------------------------------------------------------------------


def location_name(location: Any) -> tuple[str, str]:
    """OpenLineage's (namespace, name) of a file: local path, URL or ``ObjectStoragePath``."""
    protocol = getattr(location, "protocol", None)
    text = str(location)
    if protocol is not None and protocol != "file":  # ObjectStoragePath
        bucket = getattr(location, "bucket", "") or ""
        key = (getattr(location, "key", "") or "").lstrip("/")
        if not bucket and "/" in key:  # Airflow 3.0 finds no bucket in e.g. memory:// paths
            bucket, key = key.split("/", 1)
        return f"{protocol}://{bucket}", key
    if "://" in text and not text.startswith("file://"):
        parts = urlsplit(text)
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    if text.startswith("file://"):
        text = text[len("file://") :]
    return "file", str(Path(text).expanduser().resolve())


def csv_facets(location: Any, encoding: str = "utf-8", *, count_rows: bool) -> tuple[dict[str, Any], int | None]:
    """The schema facet of a CSV (its header's columns) and, if asked, its number of data rows."""
    from airflow.providers.common.compat.openlineage.facet import SchemaDatasetFacet, SchemaDatasetFacetFields

    try:
        source = files.resolve("lineage", location)
    except Exception:  # lineage must never fail the task: a file that went away has no facets
        return {}, None
    header = files.read_csv_header(source, encoding)
    facets: dict[str, Any] = {
        "schema": SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=c, type="string") for c in header])
    }
    rows = None
    if count_rows:
        with source.open() as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
            rows = max(sum(1 for _ in csv.reader(text)) - 1, 0)  # streamed: memory stays flat
    return facets, rows


def input_file(location: Any, encoding: str = "utf-8") -> Any:
    from airflow.providers.common.compat.openlineage.facet import InputDataset
    from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet

    namespace, name = location_name(location)
    local = namespace == "file"  # counting rows of object storage would download it again
    facets, rows = csv_facets(location, encoding, count_rows=local)
    input_facets: dict[str, Any] = (
        {"inputStatistics": InputStatisticsInputDatasetFacet(rowCount=rows)} if rows is not None else {}
    )
    return InputDataset(namespace=namespace, name=name, facets=facets, inputFacets=input_facets)


def output_file(location: Any, rows: int | None) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    namespace, name = location_name(location)
    facets, _ = csv_facets(location, count_rows=False)
    output_facets: dict[str, Any] = (
        {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=rows)} if rows is not None else {}
    )
    return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=output_facets)


def _uri_parts(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def model_dataset(service: str, model_id: int, kind: str = "input", **facts: Any) -> Any:
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset

    namespace, name = _uri_parts(assets.model_uri(service, model_id))
    facet_class, _ = _facet_classes()
    known = {k: v for k, v in facts.items() if v is not None}
    facets = {"predone_model": facet_class(model_id=int(model_id), **known)} if known else {}
    dataset = OutputDataset if kind == "output" else InputDataset
    return dataset(namespace=namespace, name=name, facets=facets)


def prediction_api_dataset(service: str, classifier_id: str, kind: str = "input") -> Any:
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset

    namespace, _ = _uri_parts(assets.model_uri(service, 1))
    dataset = OutputDataset if kind == "output" else InputDataset
    return dataset(namespace=namespace, name=f"prediction_apis/{classifier_id}")


def _run_facets(**details: Any) -> dict[str, Any]:
    _, facet_class = _facet_classes()
    known = {k: v for k, v in details.items() if v is not None}
    return {"predone_job": facet_class(details=known)} if known else {}


# --- per operator -------------------------------------------------------------------------------------


def _input_files(data: Iterable[Any], encoding: str) -> list[Any]:
    return [input_file(location, encoding) for location in data if location is not None]


def train_lineage(
    service: str,
    *,
    data: Iterable[Any],
    encoding: str = "utf-8",
    model_id: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    external_process_id: str | None = None,
) -> OperatorLineage[Any, Any]:
    """
    A training: its CSVs → the model it made, with its metrics.

    :param service: the connection's Prediction One service (the datasets' namespace).
    :param data: the training data and the evaluation data (``None`` where there is none).
    :param encoding: the CSVs' text encoding.
    :param model_id: the model made, where known (not before the training ended).
    :param metrics: the model's metrics from its result archive.
    :param external_process_id: the training's id.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    outputs = []
    if model_id is not None:
        outputs.append(
            model_dataset(service, model_id, "output", metrics=metrics, external_process_id=external_process_id)
        )
    return OperatorLineage(
        inputs=_input_files(data, encoding),
        outputs=outputs,
        run_facets=_run_facets(external_process_id=external_process_id, model_id=model_id),
    )


def retrain_lineage(
    service: str,
    *,
    data: Iterable[Any],
    encoding: str = "utf-8",
    model_id: int,
    retrain_job_id: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    previous_metrics: Mapping[str, Any] | None = None,
) -> OperatorLineage[Any, Any]:
    """
    A retraining: its CSVs → the model, with its new and previous metrics and the job's id.

    :param service: the connection's Prediction One service.
    :param data: the training data and the evaluation data (``None`` where there is none).
    :param encoding: the CSVs' text encoding.
    :param model_id: the model retrained.
    :param retrain_job_id: the retrain job.
    :param metrics: the retrained model's metrics.
    :param previous_metrics: the metrics of the model served before.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    model = model_dataset(
        service,
        model_id,
        "output",
        metrics=metrics,
        previous_metrics=previous_metrics,
        retrain_job_id=retrain_job_id,
    )
    return OperatorLineage(
        inputs=_input_files(data, encoding),
        outputs=[model],
        run_facets=_run_facets(retrain_job_id=retrain_job_id, model_id=model_id),
    )


def prediction_api_lineage(
    service: str, *, classifier_id: str, model_id: int | None = None, version: int | None = None
) -> OperatorLineage[Any, Any]:
    """
    A prediction API made: the model → the API.

    :param service: the connection's Prediction One service.
    :param classifier_id: the prediction API.
    :param model_id: the model it serves, where known.
    :param version: the model version it serves, where known.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[model_dataset(service, model_id)] if model_id is not None else [],
        outputs=[prediction_api_dataset(service, classifier_id, "output")],
        run_facets=_run_facets(classifier_id=classifier_id, version=version),
    )


def batch_predict_lineage(
    service: str,
    *,
    classifier_id: str,
    input_data: Any,
    output_data: Any,
    encoding: str = "utf-8",
    reasons_data: Any = None,
    rows_in: int | None = None,
    rows_scored: int | None = None,
    model_version: int | None = None,
) -> OperatorLineage[Any, Any]:
    """
    A batch scoring: the prediction API and the input CSV → the scored CSV (and the reasons).

    :param service: the connection's Prediction One service.
    :param classifier_id: the prediction API that scored.
    :param input_data: the CSV scored.
    :param output_data: where the predictions were written.
    :param encoding: the input's text encoding.
    :param reasons_data: where the reasons were written, if asked for.
    :param rows_in: the rows read.
    :param rows_scored: the rows written to ``output_data``.
    :param model_version: the model version that scored.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    outputs = [output_file(output_data, rows_scored)]
    if reasons_data:
        outputs.append(output_file(reasons_data, None))
    return OperatorLineage(
        inputs=[prediction_api_dataset(service, classifier_id), input_file(input_data, encoding)],
        outputs=outputs,
        run_facets=_run_facets(classifier_id=classifier_id, model_version=model_version, rows_in=rows_in),
    )


def switch_lineage(
    service: str,
    *,
    model_id: int,
    retrain_job_id: str | None = None,
    switched: bool | None = None,
    metrics: Mapping[str, Any] | None = None,
    previous_metrics: Mapping[str, Any] | None = None,
    quality_gate: Mapping[str, Any] | None = None,
    approval: Mapping[str, Any] | None = None,
) -> OperatorLineage[Any, Any]:
    """
    A switch: the retrained model → what the model's prediction APIs serve (when switched),
    with the gate's verdict and the reviewer's decision.

    :param service: the connection's Prediction One service.
    :param model_id: the model.
    :param retrain_job_id: the retrain job switched to.
    :param switched: whether it was switched.
    :param metrics: the retrained model's metrics.
    :param previous_metrics: the served model's metrics.
    :param quality_gate: the gate's verdict (:meth:`~.metrics.GateVerdict.record`).
    :param approval: the reviewer's decision.
    """
    from airflow.providers.common.compat.openlineage.facet import OutputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    model = model_dataset(
        service, model_id, metrics=metrics, previous_metrics=previous_metrics, retrain_job_id=retrain_job_id
    )
    namespace, name = _uri_parts(assets.serving_uri(service, model_id))
    outputs = [OutputDataset(namespace=namespace, name=name)] if switched else []
    return OperatorLineage(
        inputs=[model],
        outputs=outputs,
        run_facets=_run_facets(
            retrain_job_id=retrain_job_id, switched=switched, quality_gate=quality_gate, approval=approval
        ),
    )


def recommendations_lineage(
    *,
    service_id: str,
    train_type: str,
    output: Any,
    version: str | None = None,
    targets: Any = None,
    targets_written: int | None = None,
    rows: int | None = None,
) -> OperatorLineage[Any, Any]:
    """
    AiTEMS recommendations out: the service's trained model (and the targets file) → the
    recommendations file.

    :param service_id: the AiTEMS service.
    :param train_type: the model's type (``personalRecommend``, ``relatedItem``, ``pop``).
    :param output: where the recommendations were written.
    :param version: the training version that answered.
    :param targets: the targets file, if any (``pop`` has none).
    :param targets_written: the targets whose recommendations were written.
    :param rows: the recommendations written.
    """
    from airflow.providers.common.compat.openlineage.facet import InputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    namespace, name = _uri_parts(assets.aitems_uri(service_id, train_type))
    inputs = [InputDataset(namespace=namespace, name=name)]
    if targets is not None:
        inputs.append(InputDataset(*location_name(targets)))  # ids, one a line: no schema to read
    return OperatorLineage(
        inputs=inputs,
        outputs=[output_file(output, rows)],
        run_facets=_run_facets(service_id=service_id, train_type=train_type, version=version, targets=targets_written),
    )


def aitems_training_lineage(
    *, service_id: str, versions: Mapping[str, str], statuses: Mapping[str, str] | None = None
) -> OperatorLineage[Any, Any]:
    """
    AiTEMS trainings: the service (and the datasets linked to it) → one model per trained type
    (namespace ``aitems://<service_id>``, name the type: the models' asset URIs).

    :param service_id: the service trained.
    :param versions: train type → the version trained.
    :param statuses: train type → the training's final status.
    """
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    namespace, service = _uri_parts(assets.aitems_service_uri(service_id))
    outputs = [OutputDataset(*_uri_parts(assets.aitems_uri(service_id, kind))) for kind in sorted(versions)]
    return OperatorLineage(
        inputs=[InputDataset(namespace=namespace, name=service)],
        outputs=outputs,
        run_facets=_run_facets(service_id=service_id, versions=dict(versions), statuses=dict(statuses or {})),
    )


def aitems_dataset(dataset_id: str, kind: str = "input") -> Any:
    """An AiTEMS dataset: namespace ``aitems://datasets``, name its id."""
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset

    dataset = OutputDataset if kind == "output" else InputDataset
    return dataset(namespace="aitems://datasets", name=str(dataset_id))


def aitems_service_lineage(
    *, service_id: str, dataset_ids: Mapping[str, str], name: str | None = None, service_type: str | None = None
) -> OperatorLineage[Any, Any]:
    """
    An AiTEMS service linked to its datasets: the user, item and interaction datasets → the
    service (namespace ``aitems://<service_id>``, name ``service``: its asset URI).

    :param service_id: the service.
    :param dataset_ids: dataset type → id.
    :param name: the service's name.
    :param service_type: ``batch`` or ``interval``.
    """
    from airflow.providers.common.compat.openlineage.facet import OutputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    namespace, path = _uri_parts(assets.aitems_service_uri(service_id))
    return OperatorLineage(
        inputs=[aitems_dataset(dataset_ids[kind]) for kind in sorted(dataset_ids)],
        outputs=[OutputDataset(namespace=namespace, name=path)],
        run_facets=_run_facets(service_id=service_id, name=name, type=service_type, datasets=dict(dataset_ids)),
    )


def push_rows_lineage(
    *, source: Any, service_id: str, dataset_id: str, rows: int | None, csv_file: bool
) -> OperatorLineage[Any, Any]:
    """
    AiTEMS incremental rows: the rows file → the dataset they were pushed into and the service
    that learns from them.

    :param source: the rows file (local path or ``ObjectStoragePath``).
    :param service_id: the interval service.
    :param dataset_id: the dataset.
    :param rows: the rows pushed.
    :param csv_file: whether the file is CSV (its header gives a schema facet); JSON Lines has none.
    """
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    namespace, path = _uri_parts(assets.aitems_service_uri(service_id))
    return OperatorLineage(
        inputs=[input_file(source) if csv_file else InputDataset(*location_name(source))],
        outputs=[aitems_dataset(dataset_id, "output"), OutputDataset(namespace=namespace, name=path)],
        run_facets=_run_facets(service_id=service_id, dataset_id=dataset_id, rows=rows),
    )


def aitems_dataset_lineage(
    *,
    bucket: str,
    key: str,
    dataset_id: str,
    source: Any = None,
    name: str | None = None,
    dataset_type: str | None = None,
    schema_name: str | None = None,
) -> OperatorLineage[Any, Any]:
    """
    An AiTEMS dataset registered: its file (or prefix of files) in NCP Object Storage → the dataset.

    :param bucket: the Object Storage bucket (namespace ``s3://<bucket>``, as an ``ObjectStoragePath`` names it).
    :param key: the object's key, or the prefix of the dataset's files.
    :param dataset_id: the dataset made.
    :param source: the file uploaded to ``key``, when the task uploaded one (local path or ``ObjectStoragePath``).
    :param name: the dataset's name.
    :param dataset_type: ``user``, ``item`` or ``interaction``.
    :param schema_name: the dataset's schema.
    """
    from airflow.providers.common.compat.openlineage.facet import InputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs = [InputDataset(namespace=f"s3://{bucket}", name=key)]
    if source is not None:
        inputs.insert(0, InputDataset(*location_name(source)))
    return OperatorLineage(
        inputs=inputs,
        outputs=[aitems_dataset(dataset_id, "output")],
        run_facets=_run_facets(dataset_id=dataset_id, name=name, type=dataset_type, schema_name=schema_name),
    )
