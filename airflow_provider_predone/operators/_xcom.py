"""
Reading ids that arrive through XCom: an upstream task's whole result where one of its fields
is meant (``model_id=train.output`` instead of ``train.output["model_id"]``).

The protocol takes plain ids; unwrapping what Airflow hands a task is the task side's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_predone.protocol.predone import positive_id


def xcom_field(value: Any, key: str) -> Any:
    """``value[key]`` when ``value`` is an upstream result (a mapping) that has ``key``, else ``value``."""
    if isinstance(value, Mapping) and key in value:
        return value[key]
    return value


def model_id_value(value: Any, field: str = "model_id") -> int:
    """
    A model id from a literal, a rendered template (``"3"``) or the train task's XCom dict.

    :param value: what the task was given.
    :param field: the parameter's name, for the error.
    :raises InvalidInputError: naming ``field`` when ``value`` is no positive integer id.
    """
    return positive_id(xcom_field(value, "model_id"), field)
