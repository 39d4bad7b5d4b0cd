"""
A model's history, read from Airflow's metadata database: the asset events our operators
emit (``predone://`` and ``aitems://``), and, for what a task that did not succeed cannot say
in an asset event, the XComs our switch and scoring tasks push.

Why XComs too: Airflow records a task's asset events only when the task succeeds, so a switch
refused by its quality gate or rejected by a person (a failed or skipped task) leaves no event.
:meth:`PredictionOneSwitchModelOperator.not_switched` pushes its record (``switched``,
``quality_gate``, ``approval``) to XCom for exactly this; batch scoring's result
(``rows_scored``, ``model_version``) is an XCom as well. Every read is limited to the DAGs the
caller may read, which the caller passes in.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from sqlalchemy import or_, select

log = logging.getLogger(__name__)

#: the outcomes of a (re)training, as the page names them
TRAINED = "trained"
SWITCHED = "switched"
APPROVED = "approved"
REFUSED = "refused by the gate"
REJECTED = "rejected"
NOT_SWITCHED = "not switched"
AWAITING = "awaiting approval"
UNDECIDED = "no decision"

#: the XCom keys the page reads (pushed by our switch, approval and scoring tasks)
DECISION_KEYS = ("retrain_job_id", "switched", "quality_gate", "approval", "review", "model_id")
SCORING_KEYS = ("rows_scored", "model_version")
#: the operators whose results count as rows scored (Airflow records a task's operator class name)
SCORING_OPERATORS = ("PredictionOneBatchPredictOperator",)
#: at most this many asset events are read (the newest)
MAX_EVENTS = 5000

_PREDONE = re.compile(r"^predone://(?P<service>[^/]+)/models/(?P<model_id>[1-9][0-9]*)(?P<serving>/serving)?$")
_AITEMS = re.compile(r"^aitems://(?P<service_id>[^/]+)/(?P<train_type>[^/]+)$")


@dataclass(frozen=True)
class TaskRef:
    """A task instance, as the UI addresses it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


@dataclass
class ModelRun:
    """One training or retraining of a model, with what was decided about it: a row and a point."""

    kind: str  # "trained" or "retrained" (or "switched", for a switch whose retraining is not visible)
    at: datetime
    task: TaskRef
    job_id: str | None = None
    version: int | str | None = None  # Prediction One numbers its versions; AiTEMS names them
    metrics: dict[str, float] = field(default_factory=dict)
    previous_metrics: dict[str, float] = field(default_factory=dict)
    outcome: str = UNDECIDED
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    decided_in: TaskRef | None = None
    rows_scored: int | None = None
    scored_version: int | None = None
    event_ids: list[int] = field(default_factory=list)


@dataclass
class ModelHistory:
    """Everything the page shows of one model (a Prediction One model, or an AiTEMS service's type)."""

    uri: str
    vendor: str  # "predone" or "aitems"
    title: str
    runs: list[ModelRun] = field(default_factory=list)
    served_version: int | str | None = None
    served_since: datetime | None = None
    gate_metric: str | None = None

    @property
    def retrains(self) -> list[ModelRun]:
        return [run for run in self.runs if run.kind != TRAINED]


def model_key(uri: str) -> tuple[str, str, str] | None:
    """``(vendor, model uri, title)`` of an asset URI of ours; a serving URI maps to its model."""
    if match := _PREDONE.match(uri):
        base = f"predone://{match['service']}/models/{match['model_id']}"
        return "predone", base, f"Prediction One model {match['model_id']} ({match['service']})"
    if match := _AITEMS.match(uri):
        return "aitems", uri, f"AiTEMS {match['service_id']} · {match['train_type']}"
    return None


def nested(extra: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``{"metrics.auc": 0.8}`` → ``{"auc": 0.8}`` for ``prefix="metrics"`` (events' extras are flat)."""
    value = extra.get(prefix)
    found: dict[str, Any] = dict(value) if isinstance(value, Mapping) else {}
    start = f"{prefix}."
    found.update({key[len(start) :]: v for key, v in extra.items() if key.startswith(start)})
    return found


def numbers(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _Event:
    id: int
    uri: str
    extra: dict[str, Any]
    at: datetime
    task: TaskRef


class HistoryReader:
    """
    Builds :class:`ModelHistory` records from the metadata database.

    :param session: a SQLAlchemy session (the api-server's, per request).
    :param readable_dags: the DAG ids whose events, runs and XComs the caller may read.
    :param may_read_xcom: whether the caller may read a DAG's XComs (defaults to yes).
    :param may_read_asset: whether the caller may read an asset, by its id (defaults to yes).
    """

    def __init__(
        self,
        session: Any,
        readable_dags: Iterable[str],
        may_read_xcom: Callable[[str], bool] | None = None,
        may_read_asset: Callable[[int], bool] | None = None,
    ) -> None:
        self.session = session
        self.readable = set(readable_dags)
        self.may_read_xcom = may_read_xcom or (lambda dag_id: True)
        self.may_read_asset = may_read_asset or (lambda asset_id: True)

    # --- reading -------------------------------------------------------------------------------

    def _events(self, only_model: str | None = None) -> list[_Event]:
        assets = self.session.execute(
            select(AssetModel.id, AssetModel.uri).where(
                or_(AssetModel.uri.like("predone://%"), AssetModel.uri.like("aitems://%"))
            )
        ).all()
        uris = {}
        for asset_id, uri in assets:
            key = model_key(uri)
            if key is None or (only_model is not None and key[1] != only_model):
                continue
            if self.may_read_asset(asset_id):
                uris[asset_id] = uri
        if not uris or not self.readable:
            return []
        # Events without a source DAG were not emitted by a task of ours (the REST API can
        # create them with any extra): they are left out, as are DAGs the caller cannot read.
        rows = self.session.scalars(
            select(AssetEvent)
            .where(AssetEvent.asset_id.in_(list(uris)), AssetEvent.source_dag_id.in_(sorted(self.readable)))
            .order_by(AssetEvent.timestamp.desc(), AssetEvent.id.desc())
            .limit(MAX_EVENTS)
        ).all()
        events = [
            _Event(
                id=row.id,
                uri=uris[row.asset_id],
                extra=dict(row.extra or {}),
                at=row.timestamp,
                task=TaskRef(
                    row.source_dag_id,
                    row.source_run_id or "",
                    row.source_task_id or "",
                    row.source_map_index if row.source_map_index is not None else -1,
                ),
            )
            for row in rows
        ]
        return sorted(events, key=lambda e: (e.at, e.id))

    def _xcoms(self, dag_id: str, run_id: str, keys: Iterable[str]) -> list[tuple[TaskRef, str, Any, datetime]]:
        """The XComs of ``keys`` in one DAG run: ``(task, key, value, timestamp)``."""
        if dag_id not in self.readable or not self.may_read_xcom(dag_id):
            return []
        rows = self.session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key.in_(list(keys))
            )
        ).all()
        found = []
        for row in rows:
            try:
                value = XComModel.deserialize_value(row)
            except Exception:  # a value some other code wrote in a shape we do not read
                log.debug("XCom %s of %s/%s/%s not readable", row.key, dag_id, run_id, row.task_id)
                continue
            found.append((TaskRef(dag_id, run_id, row.task_id, row.map_index), row.key, value, row.timestamp))
        return found

    def _consuming_runs(self, event_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
        """The DAG runs each event triggered (``{event id: [(dag_id, run_id)]}``), readable ones only."""
        if not event_ids:
            return {}
        # The DAG run <-> triggering event table (named in Python only from Airflow 3.1 on).
        association_table = AssetEvent.__table__.metadata.tables["dagrun_asset_event"]
        rows = self.session.execute(
            select(association_table.c.event_id, DagRun.dag_id, DagRun.run_id)
            .join(DagRun, DagRun.id == association_table.c.dag_run_id)
            .where(association_table.c.event_id.in_(event_ids))
        ).all()
        runs: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for event_id, dag_id, run_id in rows:
            if dag_id in self.readable:
                runs[event_id].append((dag_id, run_id))
        return runs

    # --- building --------------------------------------------------------------------------------

    def models(self, only_model: str | None = None) -> list[ModelHistory]:
        """Every model with an event the caller may see (or only ``only_model``, a model URI)."""
        events = self._events(only_model)
        by_model: dict[str, list[_Event]] = defaultdict(list)
        titles: dict[str, tuple[str, str]] = {}
        for event in events:
            key = model_key(event.uri)
            if key is not None:
                by_model[key[1]].append(event)
                titles[key[1]] = (key[0], key[2])
        histories = []
        for uri, model_events in by_model.items():
            vendor, title = titles[uri]
            history = ModelHistory(uri=uri, vendor=vendor, title=title)
            if vendor == "predone":
                self._predone(history, model_events)
            else:
                self._aitems(history, model_events)
            histories.append(history)
        return sorted(histories, key=lambda h: h.uri)

    def _aitems(self, history: ModelHistory, events: list[_Event]) -> None:
        for event in events:
            version = event.extra.get("version")
            run = ModelRun(kind=TRAINED, at=event.at, task=event.task, version=str(version) if version else None)
            run.outcome, run.event_ids = TRAINED, [event.id]
            history.runs.append(run)
        if history.runs:
            history.served_version = history.runs[-1].version
            history.served_since = history.runs[-1].at

    def _predone(self, history: ModelHistory, events: list[_Event]) -> None:
        by_job: dict[str, ModelRun] = {}
        switches: list[_Event] = []
        for event in events:
            extra = event.extra
            kind = extra.get("event")
            if event.uri.endswith("/serving") or kind == SWITCHED:
                switches.append(event)
                continue
            run = ModelRun(
                kind=TRAINED if kind == TRAINED else "retrained",
                at=event.at,
                task=event.task,
                metrics=numbers(nested(extra, "metrics")),
                previous_metrics=numbers(nested(extra, "previous_metrics")),
                event_ids=[event.id],
            )
            if run.kind == TRAINED:
                run.job_id, run.version = extra.get("external_process_id"), _int(extra.get("version"))
                run.outcome = TRAINED
            else:
                run.job_id, run.version = extra.get("retrain_job_id"), _int(extra.get("retrained_version"))
            history.runs.append(run)
            if run.kind != TRAINED and run.job_id:
                by_job[str(run.job_id)] = run
        gate_metrics: list[str] = []
        for event in switches:
            extra = event.extra
            job = str(extra.get("retrain_job_id") or "")
            if job not in by_job:  # the retraining ran where the caller cannot see it, or before the page existed
                by_job[job] = ModelRun(kind="retrained", at=event.at, task=event.task, job_id=job or None)
                history.runs.append(by_job[job])
            run = by_job[job]
            run.event_ids.append(event.id)
            run.metrics = run.metrics or numbers(nested(extra, "metrics"))
            run.previous_metrics = run.previous_metrics or numbers(nested(extra, "previous_metrics"))
            run.version = run.version or _int(extra.get("retrained_version"))
            approval = nested(extra, "approval")
            gate = nested(extra, "quality_gate")
            if gate.get("metric"):
                gate_metrics.append(str(gate["metric"]))
            self._decide(run, True, approval, gate, event.task, event.at)
            history.served_version = run.version
            history.served_since = event.at
        for run in history.runs:
            if run.kind != TRAINED and run.outcome == UNDECIDED and run.job_id:
                gate_metrics.extend(self._decision_from_xcom(run))
        self._rows_scored(history, events)
        history.runs.sort(key=lambda r: r.at)
        if history.served_version is None:
            trained = [r for r in history.runs if r.kind == TRAINED and r.version is not None]
            if trained:
                history.served_version, history.served_since = trained[-1].version, trained[-1].at
        history.gate_metric = gate_metrics[-1] if gate_metrics else default_metric(history.runs)

    @staticmethod
    def _decide(
        run: ModelRun,
        switched: bool,
        approval: Mapping[str, Any],
        gate: Mapping[str, Any],
        task: TaskRef,
        at: datetime | None,
    ) -> None:
        run.decided_in = task
        decision = approval.get("decision")
        if decision in ("approved", "rejected"):
            run.decided_by = str(approval.get("by") or approval.get("by_id") or "") or None
            run.decided_at = str(approval.get("at") or "") or None
        elif at is not None:
            run.decided_at = at.isoformat(timespec="seconds")
        if switched:
            run.outcome = APPROVED if decision == "approved" else SWITCHED
        elif decision == "rejected":
            run.outcome = REJECTED
        elif gate.get("verdict") == "refused":
            run.outcome, run.reason = REFUSED, str(gate.get("reason") or "") or None
        else:
            run.outcome = NOT_SWITCHED
        if gate.get("reason") and not run.reason:
            run.reason = str(gate["reason"])

    def _decision_from_xcom(self, run: ModelRun) -> list[str]:
        """A retraining no switch event names: its switch or approval task's XComs in the same run."""
        by_task: dict[TaskRef, dict[str, tuple[Any, datetime]]] = defaultdict(dict)
        for task, key, value, at in self._xcoms(run.task.dag_id, run.task.run_id, DECISION_KEYS):
            if task.task_id != run.task.task_id:
                by_task[task][key] = (value, at)
        for task, values in sorted(by_task.items(), key=lambda item: item[0].task_id):
            review = _mapping(values, "review")
            job = values["retrain_job_id"][0] if "retrain_job_id" in values else review.get("retrain_job_id")
            if str(job) != str(run.job_id):
                continue
            gate = _mapping(values, "quality_gate")
            if "switched" in values:
                switched, at = values["switched"]
                self._decide(run, switched is True, _mapping(values, "approval"), gate, task, at)
            elif "review" in values:
                run.outcome, run.decided_in = AWAITING, task
            return [str(gate["metric"])] if gate.get("metric") else []
        return []

    def _rows_scored(self, history: ModelHistory, events: list[_Event]) -> None:
        """
        Rows scored after each (re)training: batch scoring tasks in the same DAG run (after the
        event, before the next) and in the DAG runs the model's events triggered.
        """
        row_of_event = {event_id: run for run in history.runs for event_id in run.event_ids}
        event_at = {event.id: event.at for event in events}
        runs_seen: set[tuple[str, str]] = set()
        for event in events:
            runs_seen.add((event.task.dag_id, event.task.run_id))
        for dag_id, run_id in sorted(runs_seen):
            in_run = sorted(
                (event_at[e.id], row_of_event[e.id]) for e in events if e.id in row_of_event and
                (e.task.dag_id, e.task.run_id) == (dag_id, run_id)
            )  # fmt: skip
            for at, scored, version in self._scorings(dag_id, run_id):
                owner = None
                for event_time, run in in_run:
                    if event_time <= at:
                        owner = run
                if owner is not None:
                    _add_rows(owner, scored, version)
        for event_id, runs in self._consuming_runs(list(row_of_event)).items():
            for dag_id, run_id in runs:
                if (dag_id, run_id) in runs_seen:
                    continue  # counted above
                for _, scored, version in self._scorings(dag_id, run_id):
                    _add_rows(row_of_event[event_id], scored, version)

    def _scorings(self, dag_id: str, run_id: str) -> list[tuple[datetime, int, int | None]]:
        """Batch scoring tasks' results in one DAG run: ``(when, rows scored, model version)``."""
        # By the task's operator: other tasks may return a "rows_scored" too (a summary of them).
        scorers = {
            (task_id, map_index)
            for task_id, map_index in self.session.execute(
                select(TaskInstance.task_id, TaskInstance.map_index).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id == run_id,
                    TaskInstance.operator.in_(SCORING_OPERATORS),
                )
            )
        }
        by_task: dict[TaskRef, dict[str, tuple[Any, datetime]]] = defaultdict(dict)
        for task, key, value, at in self._xcoms(dag_id, run_id, SCORING_KEYS):
            if (task.task_id, task.map_index) in scorers:
                by_task[task][key] = (value, at)
        found = []
        for values in by_task.values():
            scored = values.get("rows_scored")
            if scored is not None and _int(scored[0]) is not None:
                version = _int(values.get("model_version", (None, None))[0])
                found.append((scored[1], int(scored[0]), version))
        return found

    def model_of_task(self, task: TaskRef) -> str | None:
        """
        The model URI a task worked on, as far as the events and XComs the caller may read say:
        the task's own events; else its ``model_id`` XCom (a refused switch); else the events of
        its DAG run; else the events that triggered its run. ``None`` when that is not one model.
        """
        events = self._events()
        same_run = [e for e in events if (e.task.dag_id, e.task.run_id) == (task.dag_id, task.run_id)]
        found = _models_of(e for e in events if e.task == task)
        if not found:
            ids = [v for t, _, v, _ in self._xcoms(task.dag_id, task.run_id, ["model_id"]) if t == task]
            if ids:
                candidates = {m for m in _models_of(events) if m.endswith(f"/models/{ids[0]}")}
                found = (candidates & _models_of(same_run)) or candidates
        if not found:
            found = _models_of(same_run)
        if not found:
            consumed = self._consumed_by(task.dag_id, task.run_id)
            found = _models_of(e for e in events if e.id in consumed)
        return found.pop() if len(found) == 1 else None

    def _consumed_by(self, dag_id: str, run_id: str) -> set[int]:
        if dag_id not in self.readable:
            return set()
        run = self.session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
        return {event.id for event in (run.consumed_asset_events if run is not None else [])}


def _mapping(values: Mapping[str, tuple[Any, datetime]], key: str) -> Mapping[str, Any]:
    value = values[key][0] if key in values else None
    return value if isinstance(value, Mapping) else {}


def _models_of(events: Iterable[_Event]) -> set[str]:
    return {key[1] for event in events if (key := model_key(event.uri)) is not None}


def _add_rows(run: ModelRun, scored: int, version: int | None) -> None:
    run.rows_scored = (run.rows_scored or 0) + scored
    if version is not None:
        run.scored_version = version


def default_metric(runs: Iterable[ModelRun]) -> str | None:
    """The metric to chart when no quality gate named one: AUC if known, else the first by name."""
    names = sorted({name for run in runs for name in run.metrics})
    if not names:
        return None
    for preferred in ("auc", "AUC", "rmse", "RMSE"):
        if preferred in names:
            return preferred
    return names[0]
