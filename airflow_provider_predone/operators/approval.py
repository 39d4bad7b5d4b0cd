"""
Human approval before a model switch: Airflow 3.1+ human-in-the-loop (HITL).

A module of its own because it subclasses Airflow's ``HITLOperator``, which does not exist
before Airflow 3.1: importing this module there is the error at DAG parse that names the
minimum version, while every other operator keeps working on Airflow 3.0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_predone.exceptions import QualityGateRejectedError
from airflow_provider_predone.metrics import LOWER_IS_BETTER, GateVerdict, MetricsReader, RetrainResult
from airflow_provider_predone.operators.base import TemplatedId, task_result
from airflow_provider_predone.operators.predone import (
    ArchiveLimits,
    OnRefusal,
    PredictionOneSwitchModelOperator,
)

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
    ends the task the same way without asking anyone. The version served now is checked
    before asking and again when the answer arrives (see
    :class:`PredictionOneSwitchModelOperator`'s ``allow_older``): an older model, or a review
    whose "served model" metrics are no longer the served version's, is refused.

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

    def __init__(
        self,
        *,
        retrain_job_id: TemplatedId,
        model_id: TemplatedId | None = None,
        quality_gate: Callable[[RetrainResult], Any] | None = None,
        on_refusal: OnRefusal = "fail",
        metrics_reader: MetricsReader | None = None,
        result_dir: str | None = None,
        result_limits: ArchiveLimits | None = None,
        allow_older: bool = False,
        subject: str | None = None,
        **kwargs: Any,
    ) -> None:
        # HITLOperator's options are fixed here: the decision is a switch or no switch.
        super().__init__(
            retrain_job_id=retrain_job_id,
            model_id=model_id,
            quality_gate=quality_gate,
            on_refusal=on_refusal,
            metrics_reader=metrics_reader,
            result_dir=result_dir,
            result_limits=result_limits,
            allow_older=allow_older,
            subject=subject or "",
            options=[APPROVE, REJECT],
            multiple=False,
            **kwargs,
        )
        self.custom_subject = subject

    #: how the refusal of a retrain job without a result archive begins
    no_archive = "No review is possible for {what}"

    @property
    def compares_metrics(self) -> bool:
        """The reviewer compares with the archive's "previous" metrics: they must be the served model's."""
        return True

    def reviewed(self, result: RetrainResult) -> dict[str, Any]:
        """The data sizes the reviewer is shown."""
        return {"sizes": data_sizes(result)}

    def execute(self, context: Context) -> Any:
        record = self.review(context)
        self.log.info("Asking for approval of retrain job %s of model %s", record["retrain_job_id"], record["model_id"])
        return HITLOperator.execute(self, context)

    def review(self, context: Context) -> dict[str, Any]:
        """
        Everything before the question: the result's metrics, the check against the version
        served now, the gate; then the request's subject and body. Returns the review record.
        """
        record, verdict = self.gate(context)
        record = task_result(record)
        context["ti"].xcom_push(key=REVIEW_KEY, value=record)
        self.subject = self.custom_subject or (
            f"Switch Prediction One model {record['model_id']} to retrain job {record['retrain_job_id']}?"
        )
        self.body = review_body(record, verdict)
        return record

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
            rejection = f"{user.get('name') or 'The reviewer'} rejected {what}; nothing was switched"
            self.not_switched(context, record, ApprovalRejectedError(rejection))
        # The answer may come days later: what is served may have changed since the review.
        self.check_served(context, record, what)
        return self.switch(context, record)


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
    if record.get("served_version") is not None:
        retrained = record.get("retrained_version")
        lines.append("")
        lines.append(
            f"**Versions:** version {record['served_version']} served now; the retrained model is "
            + (f"version {retrained}" if retrained is not None else "of a version the result archive does not name")
        )
    sizes = record.get("sizes") or {}
    labels = (("trained_rows", "trained on"), ("evaluation_rows", "evaluated on"))
    described = [f"{label}: {sizes[key]:,}" for key, label in labels if key in sizes]
    lines.append("")
    lines.append(f"**Rows:** {', '.join(described) or 'not reported by the result archive'}")
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "—"
