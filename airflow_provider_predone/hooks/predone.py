"""Hook for Sony Prediction One and its global edition, Easy Predictive Analytics."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_predone.exceptions import (
    AmbiguousModelError,
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    TransientApiError,
    reason,
)
from airflow_provider_predone.hooks._http import (
    AsyncTransport,
    SyncTransport,
    amask_network_secrets,
    mask_network_secrets,
    shared_session,
    single_attempt_failure,
    warn_unverified,
)
from airflow_provider_predone.hooks.connection import ConnectionLike, HttpSettings, connection_extras
from airflow_provider_predone.protocol import predone as api
from airflow_provider_predone.protocol.common import (
    ApiRequest,
    Credential,
)

if TYPE_CHECKING:
    from airflow_provider_predone.files import DataSource

T = TypeVar("T")

#: A cached API key is renewed this long before its ``end_date``.
KEY_RENEWAL_MARGIN = timedelta(minutes=5)
#: Lifetime assumed for a key whose ``end_date`` cannot be read.
UNKNOWN_KEY_LIFETIME = timedelta(minutes=10)
#: Largest result archive we download unless told otherwise.
MAX_DOWNLOAD_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class PredictionOneConnection:
    """What a ``predone`` connection holds, read once per hook. Secrets stay out of ``repr``."""

    settings: HttpSettings
    service: str
    secret_key: str | None = field(repr=False)
    train_api_key: str | None = field(repr=False)
    retrain_api_key: str | None = field(repr=False)

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> PredictionOneConnection:
        """Read a ``predone`` connection; an unknown service or a bad setting fails naming the field."""
        extras = connection_extras(conn)
        service = extras.get("service") or api.DEFAULT_SERVICE
        try:
            base_url = api.base_url(service, conn.host)
            settings = HttpSettings.from_extras(base_url, conn.conn_id, extras)
        except ValueError as exc:
            raise InvalidInputError(f"Connection {conn.conn_id!r}: {exc}") from None
        return cls(
            settings=settings,
            service=service,
            secret_key=conn.password or None,
            train_api_key=extras.get("train_api_key") or None,
            retrain_api_key=extras.get("retrain_api_key") or None,
        )

    def direct_key(self, credential: Credential) -> str | None:
        """A key the user put in the connection, which then replaces Get API Key."""
        if credential is Credential.TRAIN:
            return self.train_api_key
        if credential is Credential.RETRAIN:
            return self.retrain_api_key
        return None

    def renews_refused_key(self, credential: Credential, exc: AuthenticationError) -> bool:
        """
        Whether a refused key is worth replacing once: a train or retrain key this provider
        obtained (not one the user typed) that the service calls inactive or unknown.
        """
        return (
            exc.vendor_message in api.STALE_KEY_MESSAGES
            and credential in (Credential.TRAIN, Credential.RETRAIN)
            and not self.direct_key(credential)
        )

    def cache_key(self, credential: Credential, model_id: int | None) -> tuple[str, ...]:
        """The :data:`API_KEYS` entry of a key of this connection (host, account, kind, model)."""
        # The secret's fingerprint keeps keys of two accounts on one host apart, without
        # keeping the secret itself as a dictionary key.
        secret = hashlib.sha256((self.secret_key or "").encode()).hexdigest()[:16]
        return (self.settings.base_url, secret, credential.value, str(model_id))


class ApiKeyCache:
    """
    API keys obtained with a secret key, kept until shortly before their ``end_date``.

    Process-wide, so the tasks of a worker and the triggers of a triggerer share keys instead
    of asking for a new one per call. Values are secrets: they live only here, in memory.
    """

    def __init__(self) -> None:
        self._keys: dict[tuple[str, ...], tuple[str, datetime]] = {}
        # Per event loop: a lock is bound to the loop it was first used in, and a worker runs
        # one loop per non-deferrable wait (asyncio.run). Weak keys let closed loops go.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, key: tuple[str, ...]) -> str | None:
        """The cached key, unless it is missing or due for renewal."""
        entry = self._keys.get(key)
        if entry is None or datetime.now(UTC) >= entry[1]:
            return None
        return entry[0]

    def put(self, key: tuple[str, ...], issued: api.ApiKey) -> None:
        """Keep ``issued`` until :data:`KEY_RENEWAL_MARGIN` before its ``end_date``."""
        now = datetime.now(UTC)
        end = issued.end_date or now + UNKNOWN_KEY_LIFETIME
        self._keys[key] = (issued.api_key, max(now, end - KEY_RENEWAL_MARGIN))

    def drop(self, key: tuple[str, ...], value: str) -> bool:
        """Forget ``value`` if it is still the cached key; ``True`` if it was."""
        entry = self._keys.get(key)
        if entry is not None and entry[0] == value:
            del self._keys[key]
            return True
        return False

    def clear(self) -> None:
        """Forget every key (tests; a rotated secret key)."""
        self._keys.clear()

    def lock(self, key: tuple[str, ...]) -> asyncio.Lock:
        """Single flight: concurrent triggers of one event loop wait for one Get API Key."""
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault(key, asyncio.Lock())


API_KEYS = ApiKeyCache()


class ApiKeyPolicy:
    """
    Which key a request carries, for both transports: a key typed in the connection, else one
    obtained with the Secret key (Get API Key) and cached in :data:`API_KEYS`; a cached key the
    service refuses as inactive or unknown is dropped and obtained anew once. No I/O here: the
    sync hook and the async client each send Get API Key and the request in their own way.

    :param info: the connection.
    """

    def __init__(self, info: PredictionOneConnection) -> None:
        self.info = info

    def known(self, credential: Credential, model_id: int | None) -> str | None:
        """The key to send without asking the service: typed in the connection, or cached."""
        return self.info.direct_key(credential) or API_KEYS.get(self.info.cache_key(credential, model_id))

    def fetch(self, credential: Credential, model_id: int | None) -> tuple[ApiRequest[api.ApiKey], dict[str, str]]:
        """Get API Key for this kind of key, with the headers that authorise it."""
        return api.get_api_key(credential, model_id), self.secret_key_headers()

    def secret_key_headers(self) -> dict[str, str]:
        if not self.info.secret_key:
            raise AuthenticationError(
                f"Connection {self.info.settings.conn_id!r} has no Secret key (password field): it is needed to "
                "obtain API keys (or set train_api_key / retrain_api_key in its extras)"
            )
        return {"x-api-key": self.info.secret_key}

    def keep(self, credential: Credential, model_id: int | None, issued: api.ApiKey) -> str:
        """Cache a key just obtained (the caller has masked it) and return it."""
        API_KEYS.put(self.info.cache_key(credential, model_id), issued)
        return issued.api_key

    def lock(self, credential: Credential, model_id: int | None) -> asyncio.Lock:
        """Single flight for the async client: concurrent triggers wait for one Get API Key."""
        return API_KEYS.lock(self.info.cache_key(credential, model_id))

    def renews(self, request: ApiRequest[Any], sent: str, exc: AuthenticationError, log: Any) -> bool:
        """
        Whether to try once more with a fresh key: an obtained train or retrain key refused as
        inactive or unknown. It is dropped from the cache unless another call (many triggers
        share one key) already replaced it; either way the next try uses the current key.
        """
        if not self.info.renews_refused_key(request.credential, exc):
            return False
        if API_KEYS.drop(self.info.cache_key(request.credential, request.model_id), sent):
            log.info("%s: the cached API key was refused (%s); obtaining a new one", request.name, exc.vendor_message)
        return True


def mask_url(url: str | None) -> None:
    """Presigned URLs are credentials: mask the URL and its signature wherever they could be logged."""
    for secret in api.url_secrets(url):
        mask_secret(secret)


class PredictionOneHook(BaseHook):
    """
    Interact with the Prediction One / Easy Predictive Analytics REST API.

    Covers every documented endpoint. API keys are obtained with the connection's secret
    key (or taken from the connection), cached until shortly before they expire and masked
    in logs. Transient failures are retried with backoff; vendor errors become typed
    exceptions (:mod:`airflow_provider_predone.exceptions`).

    :param predone_conn_id: the ``predone`` connection to use.
    """

    conn_name_attr = "predone_conn_id"
    default_conn_name = "predone_default"
    conn_type = "predone"
    hook_name = "Prediction One"

    def __init__(self, predone_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.predone_conn_id = predone_conn_id

    # --- connection and keys -------------------------------------------------------------------

    @cached_property
    def connection_info(self) -> PredictionOneConnection:
        """The connection's service, keys and HTTP settings, read once per hook (network secrets masked)."""
        info = PredictionOneConnection.from_connection(self.get_connection(self.predone_conn_id))
        mask_network_secrets(info.settings.network)
        return info

    @cached_property
    def _transport(self) -> SyncTransport:
        return SyncTransport(self.connection_info.settings, api.map_error, self.log)

    @cached_property
    def keys(self) -> ApiKeyPolicy:
        """The API-key policy of this hook's connection (shared with the async client)."""
        return ApiKeyPolicy(self.connection_info)

    def _api_key(self, credential: Credential, model_id: int | None) -> str:
        if known := self.keys.known(credential, model_id):
            return known
        issued = self._transport.send(*self.keys.fetch(credential, model_id))
        mask_secret(issued.api_key)
        return self.keys.keep(credential, model_id, issued)

    def _headers(self, request: ApiRequest[Any]) -> dict[str, str]:
        if request.credential is Credential.SECRET_KEY:
            return self.keys.secret_key_headers()
        if request.credential in (Credential.TRAIN, Credential.RETRAIN):
            return {"x-api-key": self._api_key(request.credential, request.model_id)}
        return {}

    def call(self, request: ApiRequest[T], *, reconcile: Callable[[], T | None] | None = None) -> T:
        """
        Send one request built by :mod:`airflow_provider_predone.protocol.predone`; the secrets
        its response model declares (keys, presigned URLs: :func:`~..protocol.common.secrets_in`)
        are masked. A refused cached key is replaced once (:meth:`ApiKeyPolicy.renews`).
        """
        headers = self._headers(request)
        try:
            answer = self._transport.send(request, headers, reconcile=reconcile)
        except AuthenticationError as exc:
            if not self.keys.renews(request, headers.get("x-api-key", ""), exc, self.log):
                raise
            answer = self._transport.send(request, self._headers(request), reconcile=reconcile)
        for secret in api.secrets_in(answer):
            mask_secret(secret)
        return answer

    def get_api_key(self, credential_type: str = "train", model_id: int | None = None) -> str:
        """T1 Get API Key (bypassing the cache). The key is masked in logs."""
        credential = Credential(credential_type)
        issued = self._transport.send(*self.keys.fetch(credential, model_id))
        mask_secret(issued.api_key)
        return issued.api_key

    def test_connection(self) -> tuple[bool, str]:
        """
        The UI's "Test" button and ``airflow connections test``: obtain a train API key with the
        Secret key, in a single attempt — a person waits for the answer, and the retries meant
        for tasks would keep a refused connection silent for half a minute.
        """
        try:
            info = self.connection_info
            once = SyncTransport(dataclasses.replace(info.settings, max_retries=0), api.map_error, self.log)
            try:
                issued = once.send(*ApiKeyPolicy(info).fetch(Credential.TRAIN, None))
            finally:
                once.close()
        except TransientApiError as exc:
            return False, single_attempt_failure(self.connection_info.settings.base_url, exc)
        except Exception as exc:
            return False, reason(exc)  # a person testing a connection: no task to retry
        mask_secret(issued.api_key)
        return True, f"Obtained a train API key from {info.settings.base_url}"

    # --- training ----------------------------------------------------------------------------------

    def get_upload_urls(self, extension: str = "csv") -> api.UploadUrls:
        """T2: URLs for the training data, evaluation data and column info (masked)."""
        return self.call(api.get_upload_urls(extension))

    def upload(self, url: str, source: DataSource, *, label: str, landed: Callable[[], bool] | None = None) -> int:
        """Stream ``source`` to a presigned URL (no API key is sent). Returns the bytes sent."""
        mask_url(url)
        return self._transport.upload(url, source, label=label, landed=landed)

    def get_column_info(self, external_process_id: str) -> dict[str, Any]:
        """T3 Train Data Set Info."""
        return self.call(api.get_column_info(external_process_id))

    def create_model(self, external_process_id: str, name: str, config: Mapping[str, Any]) -> str:
        """
        T4 Train: create the model (starts training) with a validated ``config``.

        If the answer is lost, the training status is checked before sending again, so a
        lost answer never starts a second training.
        """
        request = api.create_model(external_process_id, name, api.validate_config(config))

        def already_created() -> str | None:
            try:
                self.get_train_status(external_process_id)
            except NotFoundError:
                return None
            return external_process_id

        return self.call(request, reconcile=already_created)

    def get_train_status(self, external_process_id: str) -> api.TrainStatus:
        """T5 Train Status Check (``result_url`` is masked)."""
        return self.call(api.get_train_status(external_process_id))

    def list_models(self, page_size: int = 30) -> Iterator[dict[str, Any]]:
        """T6: every model, following the pages."""
        return self._paginate(api.list_models, page_size)

    def delete_model(self, model_id: int) -> None:
        """T7."""
        self.call(api.delete_model(model_id))

    def list_data_sets(self, page_size: int = 30) -> Iterator[dict[str, Any]]:
        """T8: every data set (``download_url`` values are presigned: they are masked)."""
        yield from self._paginate(api.list_data_sets, page_size)

    def delete_data_set(self, data_set_id: int) -> None:
        """T9."""
        self.call(api.delete_data_set(data_set_id))

    def _paginate(self, build: Callable[[int, int], ApiRequest[api.Page]], page_size: int) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.call(build(offset, page_size))
            yield from page.items
            offset += len(page.items)
            if not page.items or (page.total is not None and offset >= page.total) or len(page.items) < page_size:
                return

    def model_ids_named(self, name: str) -> list[int]:
        """T6: the ids of every model called ``name``, ascending."""
        return sorted(int(model["model_id"]) for model in self.list_models() if model.get("name") == name)

    def find_model_id(
        self, name: str, created_after: datetime | None = None, *, existing: Collection[int] | None = None
    ) -> int | None:
        """
        The id of the model called ``name`` that a training made.

        The status answer does not carry the model id, so a finished training is matched to its
        model through the model list. With ``existing`` (the ids of the models of that name
        that existed before the training was requested), the one model of that name not among
        them; more than one such model raises :class:`AmbiguousModelError` naming them. Without
        it, the newest model of that name (created after ``created_after``, if given): a guess
        that two trainings of one name running at once both resolve to the later model.
        """
        if existing is not None:
            before = set(existing)
            new = [model_id for model_id in self.model_ids_named(name) if model_id not in before]
            if len(new) > 1:
                raise AmbiguousModelError(
                    f"Models {', '.join(map(str, new))} are all called {name!r} and all appeared while this "
                    "training ran (another training of that name ran at the same time), so which one it "
                    "made is not certain. Give each training a name of its own, e.g. "
                    'model_name="sales-{{ run_id }}"',
                    model_ids=new,
                )
            return new[0] if new else None
        best: tuple[datetime, int] | None = None
        for model in self.list_models():
            if model.get("name") != name:
                continue
            created = api.parse_datetime(model.get("created_date")) or datetime.min.replace(tzinfo=UTC)
            if created_after is not None and created < created_after:
                continue
            if best is None or created >= best[0]:
                best = (created, int(model["model_id"]))
        return best[1] if best else None

    def get_served_version(self, model_id: int) -> int | None:
        """
        The version of ``model_id`` its prediction APIs serve now (C2's ``version``), or, for a
        model without one, List models' ``version`` (T6); ``None`` if neither names one.

        Prediction APIs of one model serve one version; should they ever differ, the highest
        counts, so that nothing older than any of them is switched in unnoticed.
        """
        versions = [p.version for p in self.list_prediction_apis() if p.model_id == model_id and p.version is not None]
        if versions:
            return max(versions)
        for model in self.list_models():
            if model.get("model_id") == model_id:
                version = model.get("version")
                return version if isinstance(version, int) and not isinstance(version, bool) else None
        return None

    # --- retraining --------------------------------------------------------------------------------

    def get_retrain_upload_url(self, model_id: int, filename: str) -> api.RetrainUpload:
        """R1: a retrain job id and the URL whose upload starts retraining (masked)."""
        return self.call(api.get_retrain_upload_url(model_id, filename))

    def retrain_started(self, retrain_job_id: str, model_id: int) -> bool:
        """Whether an upload has started the job (it then must never be uploaded again)."""
        try:
            status = self.get_retrain_status(retrain_job_id, model_id)
        except NotFoundError:
            return False
        return status.status not in api.RETRAIN_NOT_STARTED

    def upload_retrain_data(self, upload: api.RetrainUpload, model_id: int, source: DataSource) -> int:
        """R1b: upload ``source`` (CSV or train/eval zip); this starts retraining, exactly once."""
        return self.upload(
            upload.upload_url,
            source,
            label=f"Retrain upload of {source.name}",
            landed=lambda: self.retrain_started(upload.retrain_job_id, model_id),
        )

    def get_retrain_status(self, retrain_job_id: str, model_id: int) -> api.RetrainStatus:
        """R2 Retrain Status Check (``download_url`` is masked)."""
        return self.call(api.get_retrain_status(retrain_job_id, model_id))

    def switch_model(self, retrain_job_id: str, model_id: int) -> None:
        """R3 Retrain Model Switch."""
        self.call(api.switch_model(retrain_job_id, model_id))

    # --- prediction APIs and inference -------------------------------------------------------------

    def create_prediction_api(
        self, model_id: int, rules: Sequence[Mapping[str, Any]] = api.ALLOW_ALL_RULES
    ) -> api.CreatedPredictionApi:
        """
        C1: create a prediction API for ``model_id`` (its inference key is masked).

        A lost answer is reconciled through the list of prediction APIs: one for this model
        that did not exist before is ours, and no second one is created.
        """
        before = {p.classifier_id for p in self.list_prediction_apis()}

        def already_created() -> api.CreatedPredictionApi | None:
            for candidate in self.list_prediction_apis():
                if candidate.model_id == model_id and candidate.classifier_id not in before:
                    return api.CreatedPredictionApi(candidate.classifier_id, candidate.version, candidate.api_key)
            return None

        return self.call(api.create_prediction_api(model_id, rules), reconcile=already_created)

    def list_prediction_apis(self) -> list[api.PredictionApi]:
        """C2 (inference keys are masked)."""
        return self.call(api.list_prediction_apis())

    def get_prediction_api(self, classifier_id: str) -> api.PredictionApi:
        """C2 for one prediction API (its inference key is masked)."""
        return self.call(api.get_prediction_api(classifier_id))

    def update_prediction_api(
        self,
        classifier_id: str,
        *,
        rules: Sequence[Mapping[str, Any]] | None = None,
        active: bool | None = None,
        is_editable: bool | None = None,
    ) -> api.PredictionApi:
        """C3."""
        return self.call(api.update_prediction_api(classifier_id, rules=rules, active=active, is_editable=is_editable))

    def delete_prediction_api(self, classifier_id: str) -> None:
        """C4."""
        self.call(api.delete_prediction_api(classifier_id))

    def infer(
        self, prediction_api: api.PredictionApi, csv_bytes: bytes, options: api.InferenceOptions | None = None
    ) -> api.InferenceResult:
        """I1: score ``csv_bytes`` (header + rows) with the prediction API's own key."""
        return self._transport.send(
            api.infer(prediction_api.url, csv_bytes, options or api.InferenceOptions()),
            {"x-api-key": prediction_api.api_key},
        )

    # --- results -----------------------------------------------------------------------------------

    def download(self, url: str, destination: Path, *, label: str, max_bytes: int = MAX_DOWNLOAD_BYTES) -> int:
        """Stream a presigned result URL to ``destination``; returns the bytes written."""
        mask_url(url)
        return self._transport.download(url, destination, label=label, max_bytes=max_bytes)

    # --- async side (triggers, batch scoring) ------------------------------------------------------

    @asynccontextmanager
    async def async_client(self, *, retry: bool = True) -> AsyncIterator[PredictionOneAsyncClient]:
        """
        An async client for status checks and inference: the connection is resolved once and
        one ``aiohttp`` session (shared per event loop and connection) serves every call.

        :param retry: retry transient failures; ``False`` sends each request once, for a caller
            that retries by itself (batch scoring frees a row's request slot while it waits).
        """
        from airflow.providers.common.compat.connection import get_async_connection

        conn = await get_async_connection(self.predone_conn_id, hook=self)
        info = PredictionOneConnection.from_connection(conn)
        await amask_network_secrets(info.settings.network)
        warn_unverified(info.settings.network, info.settings.conn_id, self.log)
        key = f"predone:{info.settings.conn_id}:{info.settings.base_url}"
        async with shared_session(key, info.settings.network) as session:
            settings = info.settings if retry else dataclasses.replace(info.settings, max_retries=0)
            yield PredictionOneAsyncClient(info, AsyncTransport(settings, api.map_error, session, self.log))


class PredictionOneAsyncClient:
    """
    Any request of :mod:`~..protocol.predone` over one session (``await client.call(api.get_train_status(epid))``),
    with the hook's API-key policy; built by :meth:`PredictionOneHook.async_client`.
    """

    def __init__(self, info: PredictionOneConnection, transport: AsyncTransport) -> None:
        self.info = info
        self.keys = ApiKeyPolicy(info)
        self._transport = transport

    async def _api_key(self, credential: Credential, model_id: int | None) -> str:
        from airflow_provider_predone._compat import amask_secret

        if known := self.keys.known(credential, model_id):
            return known
        async with self.keys.lock(credential, model_id):
            if known := self.keys.known(credential, model_id):  # another trigger obtained it meanwhile
                return known
            issued = await self._transport.send(*self.keys.fetch(credential, model_id))
            await amask_secret(issued.api_key)
            return self.keys.keep(credential, model_id, issued)

    async def _headers(self, request: ApiRequest[Any]) -> dict[str, str]:
        if request.credential is Credential.SECRET_KEY:
            return self.keys.secret_key_headers()
        if request.credential in (Credential.TRAIN, Credential.RETRAIN):
            return {"x-api-key": await self._api_key(request.credential, request.model_id)}
        return {}

    async def call(self, request: ApiRequest[T]) -> T:
        """Send an idempotent request; a refused cached key is replaced once, as in the hook."""
        from airflow_provider_predone._compat import amask_secret

        headers = await self._headers(request)
        try:
            answer = await self._transport.send(request, headers)
        except AuthenticationError as exc:
            if not self.keys.renews(request, headers.get("x-api-key", ""), exc, self._transport.log):
                raise
            answer = await self._transport.send(request, await self._headers(request))
        # Status checks (the triggers') need no result URL: it is dropped rather than masked.
        # Airflow's masker recompiles one pattern of every secret it holds on each new one, and a
        # triggerer never forgets one: 300 finished jobs would cost its event loop 160 s of CPU
        # (docs/scale.md). Keys, a handful per connection, are masked as in the sync hook.
        answer = api.without_urls(answer)
        for secret in api.secrets_in(answer):
            await amask_secret(secret)
        return answer

    async def infer(
        self, prediction_api: api.PredictionApi, csv_bytes: bytes, options: api.InferenceOptions
    ) -> api.InferenceResult:
        """I1: score ``csv_bytes`` (header + rows) with the prediction API's own key."""
        return await self._transport.send(
            api.infer(prediction_api.url, csv_bytes, options), {"x-api-key": prediction_api.api_key}
        )
