"""AitemsRecommendationsOperator: recommendations out of AiTEMS to CSV or JSON Lines (issue 24, point 4).

Against the emulator (a real server; its test control sets a service's interactions and
completes its trainings) and, for answers no honest service gives, the crafted HTTP server of
the reliability tests.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from helpers import aitems_connection

from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import (
    BadRequestError,
    InvalidInputError,
    JobNotFinishedError,
    UnexpectedResponseError,
)
from airflow_provider_predone.hooks.aitems import AitemsHook
from airflow_provider_predone.operators.aitems import RECOMMENDATIONS_UPDATES, AitemsRecommendationsOperator

USERS = 60
ITEMS = 30


def _rows() -> list[list[str]]:
    """Each user viewed five items near their number: neighbours share items, so answers differ."""
    return [[f"u{u:03d}", f"i{(u + k) % ITEMS:02d}"] for u in range(USERS) for k in range(5)]


@pytest.fixture
def service(connections: EmulatorProcess) -> str:
    """A service of the emulator whose three model types are trained on :func:`_rows`."""
    created = AitemsHook().create_service("shop_recs")
    service_id = str(created["serviceId"])
    url = f"{connections.url}/_emulator/aitems/services/{service_id}/interactions"
    body = {"rows": _rows(), "trained": ["personalRecommend", "relatedItem", "pop"], "hpConfig": {"is_enabled": False}}
    response = requests.post(url, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return service_id


def _lookups(emulator: EmulatorProcess) -> dict[str, int]:
    counts: dict[str, int] = requests.get(f"{emulator.url}/_emulator/aitems/lookups", timeout=10).json()
    return counts


def _expected(service_id: str, train_type: str, target: str | None) -> list[str]:
    values: list[str] = AitemsHook().lookup(service_id, train_type, target)["values"]
    return values


def _context() -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    return {"outlet_events": OutletEventAccessors()}


def _targets(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return path


def test_user_recommendations_to_csv_in_input_order(service: str, connections: EmulatorProcess, tmp_path: Path) -> None:
    # Out of order, a blank line, and a user the model never saw.
    ids = [f"u{u:03d}" for u in (7, 3, 59, 0, 21)] + ["stranger"]
    source = tmp_path / "users.txt"
    source.write_text("u007\nu003\n\nu059\nu000\nu021\nstranger\n", encoding="utf-8")
    output = tmp_path / "out" / "recs.csv"
    context = _context()
    result = AitemsRecommendationsOperator(
        task_id="recs", service_id=service, targets=str(source), output_data=str(output), max_in_flight=4
    ).execute(context)  # type: ignore[arg-type]

    rows = list(csv.reader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert rows[0] == ["target_id", "rank", "item_id"]
    expected = [
        [target, str(rank), item]
        for target in ids
        for rank, item in enumerate(_expected(service, "personalRecommend", target), start=1)
    ]
    assert rows[1:] == expected
    assert {r[0] for r in rows[1:]} == set(ids) - {"stranger"}  # no recommendation: no row
    assert result["output"] == str(output)
    assert (result["targets"], result["rows"], result["empty"]) == (6, len(expected), 1)
    assert result["train_type"] == "personalRecommend"
    assert not list(output.parent.glob("*.part"))
    (event,) = context["outlet_events"][_alias()].asset_alias_events
    assert event.dest_asset_key.uri == output.resolve().as_uri()
    assert event.extra["event"] == "recommendations"
    assert event.extra["service_id"] == service
    assert event.extra["rows"] == len(expected)
    assert event.extra["version"] == result["version"]


def _alias() -> Any:
    from airflow.sdk import AssetAlias

    return AssetAlias(name=RECOMMENDATIONS_UPDATES)


def test_related_items_from_a_csv_column_to_json_lines(service: str, tmp_path: Path) -> None:
    source = tmp_path / "items.csv"
    source.write_text("name,ITEM_ID\nshoe,i05\nhat,i17\nnew,not-an-item\n", encoding="utf-8")
    output = tmp_path / "related.jsonl"
    result = AitemsRecommendationsOperator(
        task_id="related",
        service_id=service,
        targets=source,
        target_column="ITEM_ID",
        train_type="relatedItem",
        output_data=output,
    ).execute(_context())  # type: ignore[arg-type]

    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"target": "i05", "values": _expected(service, "relatedItem", "i05")},
        {"target": "i17", "values": _expected(service, "relatedItem", "i17")},
        {"target": "not-an-item", "values": []},
    ]
    assert lines[0]["values"]
    assert (result["targets"], result["empty"]) == (3, 1)


def test_popular_items_to_object_storage(service: str, connections: EmulatorProcess) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach(protocol="memory", fs=MemoryFileSystem())
    output = ObjectStoragePath("memory://recs/out/popular.data")
    result = AitemsRecommendationsOperator(
        task_id="pop", service_id=service, targets="pop", output_data=output, output_format="jsonl"
    ).execute(_context())  # type: ignore[arg-type]
    assert json.loads(output.read_text()) == {"target": "pop", "values": _expected(service, "pop", None)}
    assert result["train_type"] == "pop"
    assert result["targets"] == 1
    assert _lookups(connections)["lookups"] == 2  # the operator's and the test's own


def test_the_previous_output_stays_when_a_target_fails(hostile_aitems: HostileAitems, tmp_path: Path) -> None:
    """A target the service refuses ends the run naming it and its line; the old file is kept."""
    hostile_aitems.refuse = "u-bad"
    source = _targets(tmp_path / "users.txt", [f"u{n}" for n in range(30)] + ["u-bad"] + [f"v{n}" for n in range(500)])
    output = tmp_path / "recs.csv"
    output.write_text("target_id,rank,item_id\nold,1,i1\n", encoding="utf-8")
    operator = AitemsRecommendationsOperator(
        task_id="recs", service_id="svc01", targets=source, output_data=output, max_in_flight=8
    )
    with pytest.raises(BadRequestError, match=rf"Target 'u-bad' \(line 31 of {source}\):.*HTTP 400") as raised:
        operator.execute(_context())  # type: ignore[arg-type]
    assert "Recommendations lookup" in str(raised.value)
    assert output.read_text(encoding="utf-8") == "target_id,rank,item_id\nold,1,i1\n"
    assert not list(tmp_path.glob("*.part"))
    assert len(hostile_aitems.looked_up) < 100  # the run ended there: the targets after it were not sent


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"field": "ITEM_ID", "values": [f"i{n}" for n in range(1001)]}, "values"),
        ({"field": "ITEM_ID", "values": ["i1", "bad\nid"]}, "values[1]"),
        ({"field": "ITEM_ID", "values": ["i" * 257]}, "values[0]"),
        ({"field": "ITEM_ID", "values": [{"id": "i1"}]}, "values[0]"),
        ({"field": "SCORE", "values": ["i1"]}, "field"),
        ({"field": "ITEM_ID"}, "values"),
    ],
)
def test_an_answer_out_of_bounds_fails_naming_the_field(
    hostile_aitems: HostileAitems, tmp_path: Path, answer: dict[str, Any], field: str
) -> None:
    hostile_aitems.answer = answer
    operator = AitemsRecommendationsOperator(
        task_id="recs",
        service_id="svc01",
        targets=_targets(tmp_path / "users.txt", ["u1"]),
        output_data=tmp_path / "recs.csv",
    )
    with pytest.raises(UnexpectedResponseError, match=rf"Target 'u1' \(line 1 .*{re.escape(field)}") as raised:
        operator.execute(_context())  # type: ignore[arg-type]
    assert "bad\nid" not in str(raised.value)  # an answer's value is never quoted
    assert not (tmp_path / "recs.csv").exists()


def test_lookups_keep_input_order_under_the_emulators_faults(
    service: str,
    connections: EmulatorProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Errors, dropped connections and answers held past the lookup timeout: every target is
    written once, in input order (the late ones hedged or retried)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AITEMS_DEFAULT",
        aitems_connection(connections.url, retry_wait_seconds=0.05, retry_max_wait_seconds=0.2, max_retries=10),
    )
    ids = [f"u{u:03d}" for u in range(USERS)] * 3
    source = _targets(tmp_path / "users.txt", ids)
    expected = {target: _expected(service, "personalRecommend", target) for target in set(ids)}
    output = tmp_path / "recs.jsonl"
    connections.configure(
        inference_latency_ms=5, fault_rate=0.15, fault_kinds="http_503,http_429,reset,slow", slow_seconds=3.0
    )
    try:
        result = AitemsRecommendationsOperator(
            task_id="recs", service_id=service, targets=source, output_data=output, lookup_timeout=0.5
        ).execute(_context())  # type: ignore[arg-type]
    finally:
        connections.configure(fault_rate=0.0, fault_kinds="", slow_seconds=35.0)
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["target"] for line in lines] == ids
    assert all(line["values"] == expected[line["target"]] for line in lines)
    assert result["targets"] == len(ids)
    faults = connections.state()["faults"]
    assert faults["slow"]  # the faults did happen
    assert faults["http_503"]
    assert _lookups(connections)["max_in_flight"] <= 8  # the default max_in_flight, hedges included
    logged = capfd.readouterr()
    summary = re.search(rf"Looked up {len(ids)} targets in .*?(\d+) hedges", logged.out + logged.err)
    assert summary is not None, "no summary line"
    assert int(summary.group(1)) > 0, summary.group(0)  # held answers were sent once more, not waited for


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"targets": "LINES"}, r"line 3 .*must be an id of 1 to 256 characters"),
        ({"targets": "LINES", "target_column": "USER_ID"}, r"target_column: 'USER_ID' is not a column"),
        ({"targets": "EMPTY"}, r"holds no target id"),
        ({"targets": "LINES", "output_data": "OUT/recs.parquet"}, r"output_data: .*output_format="),
        ({"targets": "LINES", "output_format": "xml"}, r"output_format must be one of \['csv', 'jsonl'\]"),
        ({"targets": "LINES", "train_type": "pop"}, r'train_type "pop" takes no targets'),
        ({"targets": "pop", "train_type": "relatedItem"}, r'targets="pop" looks up the popular items'),
        ({"targets": "LINES", "train_type": "lookalike"}, r"train_type must be one of"),
        ({"targets": "LINES", "max_in_flight": 0}, r"max_in_flight must be an integer from 1 to 256"),
        ({"targets": "LINES", "lookup_timeout": -1}, r"lookup_timeout must be a number of seconds > 0"),
        ({"targets": "LINES", "service_id": "shop_recs"}, r"service_id .*looks like a service name"),
        ({"targets": "OUT/missing.txt"}, r"targets: .*missing.txt does not exist"),
    ],
)
def test_bad_input_fails_before_any_request(
    connections: EmulatorProcess, tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    lines = tmp_path / "users.txt"
    lines.write_text("u1\nu2\n" + "x" * 257 + "\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    named = {"LINES": str(lines), "EMPTY": str(tmp_path / "empty.txt")}
    arguments = {k: named.get(v, v) if isinstance(v, str) else v for k, v in arguments.items()}
    arguments = {k: v.replace("OUT", str(tmp_path)) if isinstance(v, str) else v for k, v in arguments.items()}
    arguments.setdefault("output_data", str(tmp_path / "recs.csv"))
    operator = AitemsRecommendationsOperator(task_id="recs", **{"service_id": "svc01", **arguments})
    with pytest.raises(InvalidInputError, match=message):
        operator.execute(_context())  # type: ignore[arg-type]
    assert connections.state()["requests"] == 0


def test_an_untrained_model_type_fails_before_any_lookup(connections: EmulatorProcess, tmp_path: Path) -> None:
    service_id = str(AitemsHook().create_service("shop_untrained")["serviceId"])
    url = f"{connections.url}/_emulator/aitems/services/{service_id}/interactions"
    requests.post(url, json={"rows": _rows(), "trained": ["pop"]}, timeout=10).raise_for_status()
    operator = AitemsRecommendationsOperator(
        task_id="recs",
        service_id=service_id,
        targets=_targets(tmp_path / "items.txt", ["i01"]),
        train_type="relatedItem",
        output_data=tmp_path / "recs.csv",
    )
    with pytest.raises(JobNotFinishedError, match=rf"Service {service_id} has no relatedItem training"):
        operator.execute(_context())  # type: ignore[arg-type]
    assert _lookups(connections)["lookups"] == 0


def test_lineage_names_the_trained_model_the_targets_and_the_output(service: str, tmp_path: Path) -> None:
    source = _targets(tmp_path / "users.txt", ["u001", "u002"])
    output = tmp_path / "recs.csv"
    operator = AitemsRecommendationsOperator(task_id="recs", service_id=service, targets=source, output_data=output)
    operator.execute(_context())  # type: ignore[arg-type]
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"aitems://{service}", "personalRecommend"),
        ("file", str(source.resolve())),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(output.resolve()))]
    assert [f.name for f in lineage.outputs[0].facets["schema"].fields] == ["target_id", "rank", "item_id"]
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == operator.run_result["rows"]  # type: ignore[index]


# --- a crafted AiTEMS --------------------------------------------------------------------------


class HostileAitems:
    """Answers List trainings (a completed personalRecommend) and lookups as the test says."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] | None = None
        self.refuse: str | None = None
        self.looked_up: list[str] = []

    async def trainings(self, request: web.Request) -> web.StreamResponse:
        train = {"type": "personalRecommend", "version": "v1", "status": "completed", "inference": True}
        return web.json_response({"trains": [train], "offset": 0, "limit": 1000})

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        target = request.query.get("targetId", "")
        self.looked_up.append(target)
        if target == self.refuse:
            error = {"errorCode": "100", "message": "Bad Request", "details": "targetId refused"}
            return web.json_response({"error": error}, status=400)
        return web.json_response(self.answer or {"field": "ITEM_ID", "values": [f"{target}-pick"]})


@pytest.fixture
def hostile_aitems(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileAitems]:
    from reliability.test_hostile_responses import HostileServer

    crafted = HostileAitems()
    server = HostileServer()
    server.routes["/api/v1/services/svc01/trains"] = crafted.trainings
    server.routes["/api/v1/services/svc01/infers/lookup"] = crafted.lookup
    for running in server.serve():
        quick = {"max_retries": 1, "retry_wait_seconds": 0.01, "retry_max_wait_seconds": 0.05, "timeout": 5}
        monkeypatch.setenv("AIRFLOW_CONN_AITEMS_DEFAULT", aitems_connection(running.url, **quick))
        yield crafted


def test_targets_from_object_storage(service: str, tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach(protocol="memory", fs=MemoryFileSystem())
    targets = ObjectStoragePath("memory://recs/in/users.csv")
    targets.write_text("USER_ID,segment\nu010,a\nu011,b\n")
    output = tmp_path / "recs.jsonl"
    result = AitemsRecommendationsOperator(
        task_id="recs", service_id=service, targets=targets, target_column="USER_ID", output_data=output
    ).execute(_context())  # type: ignore[arg-type]
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["target"] for line in lines] == ["u010", "u011"]
    assert lines[1]["values"] == _expected(service, "personalRecommend", "u011")
    assert result["targets"] == 2
