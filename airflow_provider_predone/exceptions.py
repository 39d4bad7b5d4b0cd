"""Typed errors raised by the hooks, operators, sensors and triggers of this provider.

Vendor answers are mapped to a small hierarchy so that DAG authors (and retry policies) can
tell a wrong key from a deleted model from a transient outage without parsing strings.

Which failures Airflow retries is decided here, by type: a :class:`PermanentError` (a refused
key, an id that does not exist, a request or input the service refuses, a job that failed)
cannot heal by waiting, so it derives from Airflow's ``AirflowFailException`` and fails the task
without its retries, wherever it is raised (a task's ``execute``, a resumed task's
``execute_complete``, a sensor's poke). Anything else keeps Airflow's retries. The table is in
``docs/exactly-once.md``.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

#: What every permanent error's message says, once, before what to fix.
NOT_RETRIED = "not retried, as waiting cannot fix it"


class PermanentError(AirflowFailException):
    """
    A failure that waiting cannot heal: Airflow fails the task at once, without its retries.

    Its message ends by saying so and what to fix (:attr:`remedy`), once, however often the
    error is wrapped (a trigger's event, a scored row's number).
    """

    #: what to fix, said after the message
    remedy: str = "fix what the message names, then clear the task"

    def __str__(self) -> str:
        text = super().__str__()
        return text if NOT_RETRIED in text else f"{text} — {NOT_RETRIED}: {self.remedy}"


def reason(exc: BaseException) -> str:
    """``exc``'s message without the "not retried" note, for where it does not end a task."""
    return BaseException.__str__(exc)


class ApiError(AirflowException):
    """
    A vendor API call failed.

    :param message: what went wrong, naming the endpoint and the vendor's meaning.
    :param endpoint: the vendor's name of the endpoint, e.g. ``"Train Status Check"``.
    :param http_status: the HTTP status of the answer, when there was one.
    :param code: the vendor error code (``4001000204``, ``"200"`` ...), when the body had one.
    :param error: the vendor error name (``PREDA_EXTERNAL_BAD_REQUEST`` ...), when given.
    :param vendor_message: the vendor's own message (``Inactive_credential.`` ...), when given.
    :param retry_after: seconds the server asked us to wait (``Retry-After``), when given.
    """

    #: Whether retrying the same request may succeed (connection trouble, 429, unexplained 5xx).
    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        http_status: int | None = None,
        code: str | int | None = None,
        error: str | None = None,
        vendor_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.http_status = http_status
        self.code = code
        self.error = error
        self.vendor_message = vendor_message
        self.retry_after = retry_after


class AuthenticationError(ApiError, PermanentError):
    """The key, secret key or signature was refused (wrong, expired, inactive or deleted user)."""

    remedy = "correct the connection's keys (or the prediction API's access rules), then clear the task"


class NotFoundError(ApiError, PermanentError):
    """The model, data set, retrain job, prediction API or AiTEMS service does not exist (or was deleted)."""

    remedy = "check the id the task was given (and that nothing deleted it), then clear the task"


class JobNotFinishedError(ApiError):
    """The retrain job has not finished, so its model cannot be switched yet."""


class BadRequestError(ApiError, PermanentError):
    """The vendor refused the request as malformed or not allowed (a scored row its schema refuses too)."""

    remedy = "correct the value or input the service refused, then clear the task"


class PredictionApiNotRunningError(ApiError):
    """The prediction API (classifier) exists but is not ``running`` (stopped, building, ...)."""


class ServerError(ApiError):
    """The vendor answered with a server error."""


class TransientApiError(ServerError):
    """A failure that may pass: connection error, timeout, 429 or an unexplained 5xx."""

    transient = True


class NetworkSettingsError(ApiError, PermanentError):
    """
    The connection's networking settings keep every call from getting through: a server
    certificate that cannot be verified, a client certificate missing or refused, a proxy
    refusing our credentials. Retrying cannot help; the message names the extra to fix.
    """

    remedy = "correct the connection extra the message names, then clear the task"


class UnexpectedResponseError(ApiError):
    """The answer could not be understood (not JSON, missing fields, wrong shape)."""


class JobFailedError(PermanentError):
    """
    A remote job (training, retraining, prediction API build) ended in a failure status.

    Permanent: a retried task re-attaches to the same failed job (:doc:`/exactly-once`).
    """

    remedy = "the job's own message says why; correct its data or settings, then run it again"


class JobTimeoutError(AirflowException):
    """A remote job did not reach a final status before the deadline."""


class InvalidInputError(AirflowFailException, ValueError):
    """
    An argument or input file is not acceptable; nothing was uploaded.

    Derived from ``AirflowFailException``: retrying the task with the same input cannot help.
    """


class UnsafeArchiveError(AirflowFailException):
    """A result archive holds members that would escape the target folder, links or other oddities."""


class TransferError(AirflowException):
    """An upload or download did not complete intact (truncated, oversized, refused)."""


class QualityGateRejectedError(AirflowFailException):
    """The quality gate refused the retrained model; nothing was switched."""


class OlderModelError(QualityGateRejectedError):
    """
    The retrained model is older than the version served now (or may be, and cannot be told
    apart); nothing was switched. ``allow_older=True`` on the switch allows it.

    :param retrained_version: the retrained model's version, when known.
    :param served_version: the version the prediction APIs serve now.
    """

    def __init__(
        self, message: str, *, retrained_version: int | None = None, served_version: int | None = None
    ) -> None:
        super().__init__(message)
        self.retrained_version = retrained_version
        self.served_version = served_version


class StaleBaselineError(QualityGateRejectedError):
    """
    The quality gate (or the reviewer) would compare with the metrics of a model that is no
    longer served: the result archive's "previous" model is not the version served now.
    Nothing was switched.
    """


class AmbiguousModelError(AirflowFailException):
    """
    Another model of the same name appeared while a training ran, so which one the training
    made is not certain; the message names every candidate.

    :param model_ids: the candidate models' ids.
    """

    def __init__(self, message: str, *, model_ids: list[int] | None = None) -> None:
        super().__init__(message)
        self.model_ids = model_ids or []


class MetricNotFoundError(AirflowFailException):
    """
    The quality gate's metric is not in the result archive: the gate could not judge, which
    is not a refusal. The message lists the archive's members and how to pass a ``metrics_reader``.
    """


class RowsInDoubtError(ApiError, PermanentError):
    """
    Rows were sent to an AiTEMS dataset but no answer said whether they were added (the
    connection dropped, the answer timed out, or a gateway answered 502/504). The service keeps
    rows sent twice twice and offers no read-back, so they are not sent again by themselves.
    """

    remedy = (
        "if you know whether the batch was added, set batch_in_doubt_landed (True: it is skipped, False: "
        "it is sent again) and clear the task, which resumes at that batch; or set on_batch_in_doubt to "
        "'resend' (it may then be added twice) or 'skip' (it may then be missing) for every batch in doubt"
    )
