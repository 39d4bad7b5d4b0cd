"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_predone import __version__

PREDICTION_ONE = "Sony Prediction One"
AITEMS = "NAVER Cloud AiTEMS"

_SERVICE_FIELD: dict[str, Any] = {
    "label": "Service",
    "description": "Prediction One (Japan) or Easy Predictive Analytics (global edition). "
    "Picks the vendor host unless Host is set.",
    "schema": {
        "type": ["string", "null"],
        "enum": ["prediction_one", "easy_predictive_analytics"],
        "default": "prediction_one",
    },
}


def _secret_field(label: str, description: str) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], "format": "password"},
    }


def _number_field(label: str, description: str, default: float, minimum: float) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["number", "null"], "default": default, "minimum": minimum},
    }


_HTTP_SETTINGS: dict[str, Any] = {
    # Minimums as HttpSettings.from_extras enforces them (tests/test_provider_info.py checks).
    "timeout": _number_field("Request timeout (s)", "Timeout of every API request, in seconds.", 30, 0.001),
    "transfer_timeout": _number_field(
        "Transfer timeout (s)",
        "Timeout between bytes of an upload or download to a presigned URL, in seconds.",
        300,
        0.001,
    ),
    "max_retries": _number_field(
        "Max retries",
        "How often a transient failure (connection error, timeout, 429, 5xx) is retried.",
        5,
        0,
    ),
    "retry_wait_seconds": _number_field(
        "Retry base wait (s)", "First backoff wait; doubles per retry, with jitter.", 1, 0
    ),
    "retry_max_wait_seconds": _number_field("Retry max wait (s)", "Longest backoff wait.", 30, 0),
    # The networking extras of Airflow's http connection, same names and meanings
    # (read by hooks.connection.Networking, applied to sync, async and presigned traffic alike).
    "proxies": {
        "label": "Proxies",
        "description": "Proxy for every request, presigned uploads and downloads included: one URL "
        '(http://user:password@proxy.example:3128) or JSON {"http": URL, "https": URL}. '
        "Hidden like a password, since the URL may carry one. Empty: HTTP(S)_PROXY if Trust env.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true (default), false (not recommended: logs a warning), or the path of a CA "
        "bundle (PEM) on the workers and triggerers, e.g. the CA of a TLS-inspecting proxy.",
        "schema": {"type": ["string", "null"]},
    },
    "cert": {
        "label": "Client certificate",
        "description": 'Path of a client certificate (PEM holding certificate and key), or JSON ["cert.pem", '
        '"key.pem"], for services behind mutual TLS.',
        "schema": {"type": ["string", "null"]},
    },
    "trust_env": {
        "label": "Trust env",
        "description": "Honour HTTP_PROXY, HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE / SSL_CERT_FILE, "
        "as requests does.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-predone",
        "versions": [__version__],
        "name": "Prediction One and AiTEMS",
        "description": "Train, retrain, deploy, switch and score AutoML models on Sony Prediction One "
        "(Easy Predictive Analytics) and train recommendation models on NAVER Cloud AiTEMS.",
        "integrations": [
            {
                "integration-name": PREDICTION_ONE,
                "external-doc-url": "https://predictionone.sony.biz/",
                "tags": ["service"],
            },
            {
                "integration-name": AITEMS,
                "external-doc-url": "https://www.ncloud.com/product/aiService/aitems",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {
                "integration-name": PREDICTION_ONE,
                "python-modules": ["airflow_provider_predone.hooks.predone"],
            },
            {"integration-name": AITEMS, "python-modules": ["airflow_provider_predone.hooks.aitems"]},
        ],
        "operators": [
            {
                "integration-name": PREDICTION_ONE,
                "python-modules": ["airflow_provider_predone.operators.predone"],
            },
            {"integration-name": AITEMS, "python-modules": ["airflow_provider_predone.operators.aitems"]},
        ],
        "sensors": [
            {
                "integration-name": PREDICTION_ONE,
                "python-modules": ["airflow_provider_predone.sensors.predone"],
            },
            {"integration-name": AITEMS, "python-modules": ["airflow_provider_predone.sensors.aitems"]},
        ],
        "triggers": [
            {
                "integration-name": PREDICTION_ONE,
                "python-modules": ["airflow_provider_predone.triggers.predone"],
            },
            {"integration-name": AITEMS, "python-modules": ["airflow_provider_predone.triggers.aitems"]},
        ],
        "asset-uris": [
            {"schemes": ["predone"], "handler": "airflow_provider_predone.assets.sanitize_predone_uri"},
            {"schemes": ["aitems"], "handler": "airflow_provider_predone.assets.sanitize_aitems_uri"},
        ],
        # The "Models" page (Airflow 3.1+ shows it in the UI) and the task links to it.
        "plugins": [
            {
                "name": "predone_models",
                "plugin-class": "airflow_provider_predone.plugins.models_page.PredoneModelsPlugin",
            }
        ],
        "extra-links": ["airflow_provider_predone.plugins.links.ModelPageLink"],
        "connection-types": [
            {
                "connection-type": "predone",
                "hook-class-name": "airflow_provider_predone.hooks.predone.PredictionOneHook",
                "hook-name": "Prediction One",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"password": "Secret key", "host": "Host (optional override)"},
                    "placeholders": {
                        "host": "leave empty for the vendor host; http://127.0.0.1:8765 for the emulator",
                        "password": "the secret key created in the Prediction One web console",
                    },
                },
                "conn-fields": {
                    "service": _SERVICE_FIELD,
                    "train_api_key": _secret_field(
                        "Train API key",
                        "Optional: an API key of kind 'train' to use instead of obtaining one with the secret key.",
                    ),
                    "retrain_api_key": _secret_field(
                        "Retrain API key",
                        "Optional: an API key of kind 'retrain' (bound to one model) to use instead "
                        "of obtaining one with the secret key.",
                    ),
                    **_HTTP_SETTINGS,
                },
            },
            {
                "connection-type": "aitems",
                "hook-class-name": "airflow_provider_predone.hooks.aitems.AitemsHook",
                "hook-name": "AiTEMS (NAVER Cloud)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "login": "Access key ID",
                        "password": "Secret key",
                        "host": "Host (optional override)",
                    },
                    "placeholders": {
                        "host": "leave empty for https://aitems.apigw.ntruss.com",
                        "login": "NCP API access key ID",
                    },
                },
                "conn-fields": {
                    # Read by hooks.object_storage.ObjectStorageSettings (same keys sign S3 requests).
                    "object_storage_endpoint": {
                        "label": "Object Storage endpoint",
                        "description": "S3 endpoint of NCP Object Storage, where the datasets' files are put "
                        "and read; empty for https://kr.object.ncloudstorage.com (the KR region AiTEMS reads).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "object_storage_region": {
                        "label": "Object Storage region",
                        "description": "Region signed into Object Storage requests; empty for kr-standard.",
                        "schema": {"type": ["string", "null"]},
                    },
                    **_HTTP_SETTINGS,
                },
            },
        ],
    }
