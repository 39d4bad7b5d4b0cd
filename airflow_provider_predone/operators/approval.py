"""
Human approval before a model switch: Airflow 3.1+ human-in-the-loop (HITL).

A module of its own because it subclasses Airflow's ``HITLOperator``, which does not exist
before Airflow 3.1: importing this module there is the error at DAG parse that names the
minimum version, while every other operator keeps working on Airflow 3.0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_predone import assets
from airflow_provider_predone.exceptions import MetricNotFoundError, QualityGateRejectedError
from airflow_provider_predone.metrics import LOWER_IS_BETTER, GateVerdict, RetrainResult, verdict_of
from airflow_provider_predone.operators.base import task_result
from airflow_provider_predone.operators.predone import PredictionOneSwitchModelOperator

#: the first Airflow release with human-in-the-loop operators
MIN_AIRFLOW = "3.1"

try:
    from airflow.providers.standard.operators.hitl import HITLOperator
except Exception as error:  # Airflow 3.0: AirflowOptionalProviderFeatureException, or an older standard provider
    from airflow import __version__ as _airflow_version

    raise ImportError(
        f"PredictionOneApproveSwitchOperator needs Airflow {MIN_AIRFLOW} or newer (human-in-the-loop "
        f"operators, airflow.providers.standard.operators.hitl); this is Airflow {_airflow_version} ({error}). "
        "Upgrade Airflow, or use PredictionOneSwitchModelOperator with a quality_gate instead."
    ) from error

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

APPROVE = "Approve"
REJECT = "Reject"
#: the XCom key the review (ids, metrics, verdict) is kept under while the task waits
REVIEW_KEY = "review"


class ApprovalRejectedError(QualityGateRejectedError):
    """The reviewer rejected the retrained model (``on_refusal="fail"``); nothing was switched."""


class PredictionOneApproveSwitchOperator(PredictionOneSwitchModelOperator, HITLOperator):
    """
    Switch a model's prediction API to its retrained version once a person approves it.

    The retrain result is downloaded and its metrics are shown to the reviewer in Airflow's
    "Required actions" page, next to those of the model served until now (value, change,
    which is better), with the quality gate's verdict, the data sizes and the retrain job
    id. The task then waits for the answer without holding a worker (Airflow 3.3 parks it
    in ``awaiting_input``; 3.1 and 3.2 defer it to the triggerer). ``Approve`` switches;
    ``Reject`` switches nothing and ends as ``on_refusal`` says. A quality gate that refuses
    ends the task the same way without asking anyone.

    The decision (``approval``: ``decision``, ``by``, ``by_id``, ``at``) is recorded with the
    metrics in the XCom, and in the asset event of the switch.

    Needs Airflow 3.1+; takes every parameter of :class:`PredictionOneSwitchModelOperator`, and:

    :param subject: the request's headline (default: which model, which retrain job).
    :param assigned_users: who may answer, ``{"id": ..., "name": ...}`` or a list of them
        (default: anyone allowed to act on the DAG).
    :param response_timeout: how long to wait for an answer; without an answer the task fails.
    :param notifiers: Airflow notifiers called when the request is made (e.g. to send its link).
    :return: the switch's XCom plus ``approval``.
    """

    template_fields: Sequence[str] = (*PredictionOneSwitchModelOperator.template_fields, "subject")
    ui_color = "#fff4cc"

    def __init__(self, *, subject: str | None = None, **kwargs: Any) -> None:
        # HITLOperator's options are fixed here: the decision is a switch or no switch.
        super().__init__(subject=subject or "", options=[APPROVE, REJECT], multiple=False, **kwargs)
        self.custom_subject = subject

    def execute(self, context: Context) -> Any:
        retrain_job_id, model_id, status = self.finished_retrain()
        what = f"retrain job {retrain_job_id} of model {model_id}"
        if not status.download_url:
            raise MetricNotFoundError(
                f"No review is possible for {what}: its status answer has no download_url (no result archive); "
                "nothing was switched"
            )
        record: dict[str, Any] = {"retrain_job_id": retrain_job_id, "model_id": model_id}
        with self.open_result(
            status.download_url, f"Retrain result ({what})", self.result_dir, retrain_job_id, self.metrics_reader
        ) as result:
            verdict = verdict_of(self.quality_gate, result) if self.quality_gate is not None else None
        record.update(metrics=result.metrics, previous_metrics=result.previous_metrics, sizes=data_sizes(result))
        if verdict is not None:
            record["quality_gate"] = verdict.record()
            if not verdict.accepted:
                self._refused(context, task_result({**record, "switched": False}), what, verdict)
        context["ti"].xcom_push(key=REVIEW_KEY, value=task_result(record))
        self.subject = self.custom_subject or f"Switch Prediction One model {model_id} to retrain job {retrain_job_id}?"
        self.body = review_body(record, verdict)
        self.log.info("Asking for approval of %s", what)
        return HITLOperator.execute(self, context)

    def finished_retrain(self) -> tuple[str, int, Any]:
        """The retrain job and model ids, and the job's status (it must have succeeded)."""
        from airflow_provider_predone.exceptions import JobNotFinishedError
        from airflow_provider_predone.protocol import predone as api
        from airflow_provider_predone.protocol.common import Phase, path_id

        job = self.retrain_job_id if isinstance(self.retrain_job_id, Mapping) else {}
        retrain_job_id = path_id(job.get("retrain_job_id", self.retrain_job_id), "retrain_job_id")
        model_id = api.model_id_value(self.model_id if self.model_id is not None else job.get("model_id"))
        status = self.hook.get_retrain_status(retrain_job_id, model_id)
        if api.RETRAIN_STATUSES.classify(status.status) is not Phase.SUCCESS:
            raise JobNotFinishedError(
                f"Retrain Model Switch (retrain_job_id={retrain_job_id}, model_id={model_id}): the job is "
                f"{status.status!r}, not finished, so the model cannot be switched",
                endpoint="Retrain Model Switch",
                vendor_message="Retrain job is not finished.",
            )
        return retrain_job_id, model_id, status

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:  # type: ignore[override]
        answer = HITLOperator.execute_complete(self, context, event)
        ti = context["ti"]
        record = dict(ti.xcom_pull(task_ids=ti.task_id, key=REVIEW_KEY) or {})
        user = answer["responded_by_user"] or {}
        approved = list(answer["chosen_options"]) == [APPROVE]
        record["approval"] = task_result(
            {
                "decision": "approved" if approved else "rejected",
                "by": user.get("name"),
                "by_id": user.get("id"),
                "at": answer["responded_at"].isoformat(),
            }
        )
        what = f"retrain job {record['retrain_job_id']} of model {record['model_id']}"
        self.log.info("%s was %s by %s", what, record["approval"]["decision"], user.get("name"))
        if not approved:
            self._rejected(context, {**record, "switched": False}, what, user.get("name"))
        self.hook.switch_model(record["retrain_job_id"], record["model_id"])
        self.log.info("Model %s now serves retrain job %s", record["model_id"], record["retrain_job_id"])
        record["switched"] = True
        service = self.hook.connection_info.service
        extra = {"event": "switched", **record}
        assets.emit(context, self.asset_alias, assets.serving_uri(service, record["model_id"]), extra)
        return task_result(record)

    def _rejected(self, context: Context, record: dict[str, Any], what: str, by: str | None) -> None:
        """Record the rejection in XCom (a failed or skipped task returns nothing), then fail or skip."""
        ti = context["ti"]
        for key, value in record.items():
            ti.xcom_push(key=key, value=value)
        ti.xcom_push(key="return_value", value=record)
        message = f"{by or 'The reviewer'} rejected {what}; nothing was switched"
        if self.on_refusal == "skip":
            from airflow.providers.common.compat.sdk import AirflowSkipException

            self.log.warning("%s (on_refusal='skip': the task is skipped)", message)
            raise AirflowSkipException(message)
        raise ApprovalRejectedError(message)


def data_sizes(result: RetrainResult) -> dict[str, int]:
    """Rows trained on and evaluated, where the result archive tells them."""
    summary = result.summary or {}
    evaluation = summary.get("evaluation") if isinstance(summary.get("evaluation"), dict) else {}
    sizes = {"trained_rows": summary.get("trained_rows"), "evaluation_rows": (evaluation or {}).get("rows")}
    return {k: int(v) for k, v in sizes.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def review_body(record: Mapping[str, Any], verdict: GateVerdict | None) -> str:
    """The Markdown the reviewer reads: both models' metrics side by side, the gate, sizes, ids."""
    new = record.get("metrics") or {}
    old = record.get("previous_metrics") or {}
    lines = [
        f"**Retrain job** `{record['retrain_job_id']}` of **model** `{record['model_id']}`",
        "",
        "| Metric | Served model | Retrained model | Change | Better |",
        "|---|---:|---:|---:|---|",
    ]
    for name in sorted(set(new) | set(old)):
        value, previous = new.get(name), old.get(name)
        change, better = "", "?"
        if isinstance(value, int | float) and isinstance(previous, int | float):
            change = f"{value - previous:+.4g}"
            if value == previous:
                better = "same"
            else:
                retrained_better = value < previous if name in LOWER_IS_BETTER else value > previous
                better = "retrained" if retrained_better else "served"
        lines.append(f"| {name} | {_number(previous)} | {_number(value)} | {change} | {better} |")
    if not new and not old:
        lines.append("| (no metric found in the result archive) | | | | |")
    lines.append("")
    if verdict is None:
        lines.append("**Quality gate:** none")
    else:
        lines.append(f"**Quality gate:** {'accepted' if verdict.accepted else 'refused'} — {verdict.reason}")
    sizes = record.get("sizes") or {}
    labels = (("trained_rows", "trained on"), ("evaluation_rows", "evaluated on"))
    described = [f"{label}: {sizes[key]:,}" for key, label in labels if key in sizes]
    lines.append("")
    lines.append(f"**Rows:** {', '.join(described) or 'not reported by the result archive'}")
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "—"
