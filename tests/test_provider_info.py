"""Provider registration: metadata valid against Airflow's schema, found by the Airflow CLI."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_predone.get_provider_info import get_provider_info

INFO = get_provider_info()


def test_entry_point_names_this_function() -> None:
    found = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_predone")]
    assert [e.load() for e in found] == [get_provider_info]
    assert INFO["package-name"] == "airflow-provider-predone"


def test_metadata_validates_against_airflows_provider_schemas() -> None:
    root = Path(airflow.__file__).parent
    runtime = json.loads((root / "provider_info.schema.json").read_text())
    jsonschema.validate(INFO, runtime)
    strict = json.loads((root / "provider.yaml.schema.json").read_text())
    connection_types = {"type": "object", "properties": {"connection-types": strict["properties"]["connection-types"]}}
    jsonschema.validate({"connection-types": INFO["connection-types"]}, connection_types)


def test_every_listed_module_and_hook_class_imports() -> None:
    for section in ("hooks", "operators", "sensors", "triggers"):
        for item in INFO[section]:
            for module in item["python-modules"]:
                importlib.import_module(module)
    for connection in INFO["connection-types"]:
        module, _, name = connection["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == connection["connection-type"]
        assert hook.hook_name == connection["hook-name"]


def test_predone_connection_form() -> None:
    predone = next(c for c in INFO["connection-types"] if c["connection-type"] == "predone")
    assert predone["conn-fields"]["service"]["schema"]["enum"] == ["prediction_one", "easy_predictive_analytics"]
    assert predone["ui-field-behaviour"]["relabeling"]["password"] == "Secret key"
    assert set(predone["ui-field-behaviour"]["hidden-fields"]) == {"schema", "port", "login"}
    secret_fields = [name for name, f in predone["conn-fields"].items() if f["schema"].get("format") == "password"]
    # Airflow masks the first two by name ("api_key"); a proxy URL may carry a password.
    assert secret_fields == ["train_api_key", "retrain_api_key", "proxies"]


def test_both_forms_offer_the_http_connections_networking_extras() -> None:
    from airflow_provider_predone.hooks.connection import Networking

    for connection in INFO["connection-types"]:
        fields = connection["conn-fields"]
        assert {"proxies", "verify", "cert", "trust_env"} <= fields.keys()
        assert fields["proxies"]["schema"]["format"] == "password"
        assert fields["trust_env"]["schema"]["default"] is Networking().trust_env


def run_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, env=os.environ, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def json_part(output: str) -> str:
    """The JSON document of a CLI answer (Airflow may log lines, also starting with "[", before it)."""
    return next(line for line in output.splitlines() if line.startswith("[{"))


def test_airflow_cli_lists_the_provider_and_its_hooks() -> None:
    providers = run_cli("providers", "list", "--output", "json")
    assert "airflow-provider-predone" in providers
    hooks = json.loads(json_part(run_cli("providers", "hooks", "--output", "json")))
    by_type = {h["connection_type"]: h for h in hooks}
    assert by_type["predone"]["class"] == "airflow_provider_predone.hooks.predone.PredictionOneHook"
    assert by_type["aitems"]["class"] == "airflow_provider_predone.hooks.aitems.AitemsHook"
    triggers = run_cli("providers", "triggers", "--output", "json")
    assert "airflow_provider_predone.triggers.predone" in triggers


def test_asset_uri_handlers_accept_ours_and_refuse_malformed_uris() -> None:
    from urllib.parse import urlsplit

    import pytest

    from airflow_provider_predone import assets

    handlers = {scheme: entry["handler"] for entry in INFO["asset-uris"] for scheme in entry["schemes"]}
    assert handlers == {
        "predone": "airflow_provider_predone.assets.sanitize_predone_uri",
        "aitems": "airflow_provider_predone.assets.sanitize_aitems_uri",
    }
    for uri in (assets.model_uri("prediction_one", 3), assets.serving_uri("easy_predictive_analytics", 3)):
        assert assets.sanitize_predone_uri(urlsplit(uri)).geturl() == uri
    assert assets.sanitize_aitems_uri(urlsplit(assets.aitems_uri("svc1", "pop"))).geturl() == "aitems://svc1/pop"
    for bad in ("predone://prediction_one/models/", "predone://prediction_one/models/x", "predone:///models/1"):
        with pytest.raises(ValueError, match="predone://<service>/models/<model_id>"):
            assets.sanitize_predone_uri(urlsplit(bad))
    with pytest.raises(ValueError, match="aitems://<service_id>"):
        assets.sanitize_aitems_uri(urlsplit("aitems://svc1/bestsellers"))


def test_form_minimums_agree_with_the_code() -> None:
    """Each numeric field's form minimum is accepted by HttpSettings and anything below it refused."""
    import pytest

    from airflow_provider_predone.hooks.connection import HttpSettings

    fields = INFO["connection-types"][0]["conn-fields"]
    numeric = {name: f["schema"] for name, f in fields.items() if "minimum" in f["schema"]}
    assert {"timeout", "transfer_timeout", "max_retries", "retry_wait_seconds"} <= numeric.keys()
    for name, schema in numeric.items():
        HttpSettings.from_extras("http://127.0.0.1", "c", {name: schema["minimum"]})
        with pytest.raises(ValueError, match=name):
            HttpSettings.from_extras("http://127.0.0.1", "c", {name: schema["minimum"] - 0.0005})
