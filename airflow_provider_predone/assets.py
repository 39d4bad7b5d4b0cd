"""
Airflow assets for models and trainings, so that downstream DAGs can be scheduled on
"model retrained" or "model switched".

URIs (registered under ``asset-uris`` in the provider info):

* ``predone://<service>/models/<model_id>`` — a Prediction One model; an event when it is
  trained and each time it is retrained;
* ``predone://<service>/models/<model_id>/serving`` — what the model's prediction APIs serve;
  an event when a retrained version is switched in;
* ``aitems://<service_id>/<train_type>`` — an AiTEMS recommendation model; an event when a
  training completes;
* ``aitems://<service_id>/service`` — an AiTEMS service; an event when its datasets are linked
  and it can learn;
* ``aitems://datasets/<dataset_id>`` — an AiTEMS dataset; an event when it is registered and
  ``enable``.

Model ids are known only when a task runs, so the operators emit these events through an
asset alias they declare as an outlet (:data:`MODEL_UPDATES`, :data:`SERVING_UPDATES`,
:data:`AITEMS_UPDATES`); a DAG scheduled on a concrete URI above is triggered by them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult

from airflow_provider_predone.protocol.aitems import TRAIN_TYPES

MODEL_UPDATES = "predone_model_updates"
SERVING_UPDATES = "predone_serving_updates"
AITEMS_UPDATES = "aitems_training_updates"
AITEMS_SERVICES = "aitems_service_updates"
AITEMS_DATASETS = "aitems_dataset_updates"
#: the host part of a dataset's asset URI (:func:`aitems_dataset_uri`); AiTEMS service ids are never this
AITEMS_DATASET_HOST = "datasets"
#: the last part of a service's own asset URI (:func:`aitems_service_uri`)
AITEMS_SERVICE = "service"

_PREDONE_PATH = re.compile(r"^/models/[1-9][0-9]*(/serving)?$")


def model_uri(service: str, model_id: int) -> str:
    return f"predone://{service}/models/{int(model_id)}"


def serving_uri(service: str, model_id: int) -> str:
    return f"{model_uri(service, model_id)}/serving"


def aitems_uri(service_id: str, train_type: str) -> str:
    return f"aitems://{service_id}/{train_type}"


def sanitize_predone_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI handler for ``predone://``: refuse URIs that name no model."""
    if not uri.netloc or not _PREDONE_PATH.match(uri.path):
        raise ValueError(
            f"a predone:// asset URI must be predone://<service>/models/<model_id>[/serving], got {uri.geturl()!r}"
        )
    return uri._replace(query="", fragment="")


def aitems_service_uri(service_id: str) -> str:
    """An AiTEMS service itself (its datasets linked), beside its models ``aitems://<service_id>/<train_type>``."""
    return f"aitems://{service_id}/{AITEMS_SERVICE}"


def aitems_dataset_uri(dataset_id: str) -> str:
    """An AiTEMS dataset, ``aitems://datasets/<dataset_id>``: the namespace and name its lineage has too."""
    return f"aitems://{AITEMS_DATASET_HOST}/{dataset_id}"


def sanitize_aitems_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI handler for ``aitems://``: ``aitems://<service_id>/<train_type or service>``."""
    if uri.netloc == AITEMS_DATASET_HOST and uri.path.count("/") == 1 and len(uri.path) > 1:
        return uri._replace(query="", fragment="")  # aitems://datasets/<dataset_id>
    if not uri.netloc or uri.path.lstrip("/") not in (*TRAIN_TYPES, AITEMS_SERVICE):
        raise ValueError(
            "an aitems:// asset URI must be aitems://<service_id>/<one of "
            f"{[*TRAIN_TYPES, AITEMS_SERVICE]}>, got {uri.geturl()!r}"
        )
    return uri._replace(query="", fragment="")


def alias_outlets(outlets: Any, alias: str) -> list[Any]:
    """The user's outlets plus the operator's asset alias (declared, so events can be emitted)."""
    from airflow.providers.common.compat.sdk import AssetAlias

    existing = list(outlets) if isinstance(outlets, list | tuple) else ([outlets] if outlets else [])
    if not any(isinstance(o, AssetAlias) and o.name == alias for o in existing):
        existing.append(AssetAlias(name=alias))
    return existing


def emit(context: Any, alias: str, uri: str, extra: dict[str, Any]) -> None:
    """Record an asset event for ``uri`` through ``alias``. Outside a task run there is nowhere to record it."""
    outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
    if outlet_events is None:
        return
    from airflow.providers.common.compat.sdk import Asset, AssetAlias

    outlet_events[AssetAlias(name=alias)].add(Asset(uri), extra=flat_extra(extra))


def flat_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """``{"metrics": {"auc": 0.8}}`` → ``{"metrics.auc": 0.8}``; unknown values left out.

    Airflow 3.0 hashes alias event extras, so their values must be scalars.
    """
    flat: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if v is not None})
        elif value is not None:
            flat[key] = value
    return flat
