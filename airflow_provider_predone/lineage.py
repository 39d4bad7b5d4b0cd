"""
OpenLineage for the Prediction One operators: training data → model → prediction API →
scored file.

The OpenLineage provider (``apache-airflow-providers-openlineage``, the ``openlineage`` extra)
calls ``get_openlineage_facets_on_complete(task_instance)`` on an operator after it succeeds;
ours hand over to :func:`facets_on_complete`, which imports the provider only then. Without
the provider installed nothing calls it, and nothing in this module is imported.

Datasets (OpenLineage's naming: a namespace and a name):

* a local file: namespace ``file``, name its absolute path; object storage
  (``s3://bucket/key``, any ``ObjectStoragePath``): namespace ``s3://bucket``, name ``key``;
* a model: namespace ``predone://<service>``, name ``models/<model_id>`` — together the
  model's asset URI (:mod:`.assets`); what its prediction APIs serve: ``models/<id>/serving``;
* a prediction API: namespace ``predone://<service>``, name ``prediction_apis/<classifier_id>``.

Facets: the CSV columns (``schema``), row counts (input and output statistics), the model's
metrics and the job ids (``predone_model`` dataset facet, ``predone_job`` run facet).
"""

from __future__ import annotations

import csv
import io
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_predone import assets, files

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_predone.operators.predone import PredictionOneBaseOperator

#: where the custom facets' schema is described (the docs page)
SCHEMA_URL = "https://airflow-provider-predone.readthedocs.io/en/latest/lineage.html"
#: the producer named in our custom facets
PRODUCER = "airflow-provider-predone"


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
            return f"{SCHEMA_URL}#predone-model"

    @attrs.define
    class PredictionOneJobRunFacet(RunFacet):  # type: ignore[misc]
        """The vendor's job ids and outcomes of this run (ids, gate verdict, approval)."""

        details: dict[str, Any]

        @staticmethod
        def _get_schema() -> str:
            return f"{SCHEMA_URL}#predone-job"

    return PredictionOneModelDatasetFacet, PredictionOneJobRunFacet


#: where :func:`keep_results` keeps a task's result and service name on the operator
RESULT_ATTRIBUTE = "_predone_lineage_result"


def keep_results(cls: type) -> None:
    """
    Make ``execute`` and ``execute_complete`` of ``cls`` keep their result (and the service name)
    on the operator, for :func:`facets_on_complete`.

    Why: the OpenLineage provider builds the facets in a forked process whose connection to
    the task supervisor is unusable, so they cannot come from XCom or a connection lookup.
    """
    for name in ("execute", "execute_complete"):
        method = cls.__dict__.get(name)
        if method is None or getattr(method, "_keeps_result", False):
            continue

        def keeping(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            result = __method(self, *args, **kwargs)
            try:
                service = self.hook.connection_info.service
            except Exception:  # lineage must never fail a task
                service = None
            setattr(self, RESULT_ATTRIBUTE, (result, service))
            return result

        keeping._keeps_result = True  # type: ignore[attr-defined]
        keeping.__name__, keeping.__qualname__, keeping.__doc__ = method.__name__, method.__qualname__, method.__doc__
        keeping.__wrapped__ = method  # type: ignore[attr-defined]
        setattr(cls, name, keeping)


def facets_on_complete(operator: PredictionOneBaseOperator) -> OperatorLineage[Any, Any]:
    """The lineage of a finished Prediction One task, from its arguments and its result."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    result, service = getattr(operator, RESULT_ATTRIBUTE, (None, None))
    builder = next((_BUILDERS[c.__name__] for c in type(operator).__mro__ if c.__name__ in _BUILDERS), None)
    if builder is None or not isinstance(result, dict) or service is None:
        return OperatorLineage()
    return builder(operator, result, service)


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


def _inputs(operator: Any) -> list[Any]:
    encoding = getattr(operator, "encoding", "utf-8")
    data = [operator.train_data, getattr(operator, "eval_data", None)]
    return [input_file(location, encoding) for location in data if location is not None]


def _train(operator: Any, result: dict[str, Any], service: str) -> OperatorLineage[Any, Any]:
    from airflow.providers.openlineage.extractors import OperatorLineage

    model_id = result.get("model_id")
    outputs = []
    if model_id is not None:
        outputs.append(
            model_dataset(
                service,
                model_id,
                "output",
                metrics=result.get("metrics"),
                external_process_id=result.get("external_process_id"),
            )
        )
    return OperatorLineage(
        inputs=_inputs(operator),
        outputs=outputs,
        run_facets=_run_facets(external_process_id=result.get("external_process_id"), model_id=model_id),
    )


def _retrain(operator: Any, result: dict[str, Any], service: str) -> OperatorLineage[Any, Any]:
    from airflow.providers.openlineage.extractors import OperatorLineage

    model = model_dataset(
        service,
        result["model_id"],
        "output",
        metrics=result.get("metrics"),
        previous_metrics=result.get("previous_metrics"),
        retrain_job_id=result.get("retrain_job_id"),
    )
    return OperatorLineage(
        inputs=_inputs(operator),
        outputs=[model],
        run_facets=_run_facets(retrain_job_id=result.get("retrain_job_id"), model_id=result["model_id"]),
    )


def _create_prediction_api(operator: Any, result: dict[str, Any], service: str) -> OperatorLineage[Any, Any]:
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[model_dataset(service, result["model_id"])] if result.get("model_id") is not None else [],
        outputs=[prediction_api_dataset(service, result["classifier_id"], "output")],
        run_facets=_run_facets(classifier_id=result["classifier_id"], version=result.get("version")),
    )


def _batch_predict(operator: Any, result: dict[str, Any], service: str) -> OperatorLineage[Any, Any]:
    from airflow.providers.openlineage.extractors import OperatorLineage

    classifier_id = str(operator.classifier_id)
    outputs = [output_file(result["output_data"], result.get("rows_scored"))]
    if result.get("reasons_data"):
        outputs.append(output_file(result["reasons_data"], None))
    return OperatorLineage(
        inputs=[prediction_api_dataset(service, classifier_id), input_file(operator.input_data, operator.encoding)],
        outputs=outputs,
        run_facets=_run_facets(
            classifier_id=classifier_id, model_version=result.get("model_version"), rows_in=result.get("rows_in")
        ),
    )


def _switch(operator: Any, result: dict[str, Any], service: str) -> OperatorLineage[Any, Any]:
    from airflow.providers.openlineage.extractors import OperatorLineage

    model_id = result["model_id"]
    model = model_dataset(
        service,
        model_id,
        metrics=result.get("metrics"),
        previous_metrics=result.get("previous_metrics"),
        retrain_job_id=result.get("retrain_job_id"),
    )
    namespace, name = _uri_parts(assets.serving_uri(service, model_id))
    from airflow.providers.common.compat.openlineage.facet import OutputDataset

    outputs = [OutputDataset(namespace=namespace, name=name)] if result.get("switched") else []
    return OperatorLineage(
        inputs=[model],
        outputs=outputs,
        run_facets=_run_facets(
            retrain_job_id=result.get("retrain_job_id"),
            switched=result.get("switched"),
            quality_gate=result.get("quality_gate"),
            approval=result.get("approval"),
        ),
    )


_BUILDERS = {
    "PredictionOneTrainOperator": _train,
    "PredictionOneRetrainOperator": _retrain,
    "PredictionOneCreatePredictionApiOperator": _create_prediction_api,
    "PredictionOneBatchPredictOperator": _batch_predict,
    "PredictionOneSwitchModelOperator": _switch,
    "PredictionOneApproveSwitchOperator": _switch,
}
