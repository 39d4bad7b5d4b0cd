"""Hook for NAVER Cloud AiTEMS (recommendation model training)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import tenacity
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_predone.exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    NotFoundError,
    RowsInDoubtError,
    TransientApiError,
    UnexpectedResponseError,
    reason,
)
from airflow_provider_predone.hooks._http import (
    AsyncTransport,
    SyncTransport,
    amask_network_secrets,
    describe_retry,
    mask_network_secrets,
    retry_policy,
    shared_session,
    single_attempt_failure,
    warn_unverified,
)
from airflow_provider_predone.hooks.connection import ConnectionLike, HttpSettings, connection_extras
from airflow_provider_predone.hooks.object_storage import ObjectStorageClient, ObjectStorageSettings
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import (
    ApiRequest,
)

T = TypeVar("T")

#: Datasets asked for per listing page (AiTEMS' default and, in the emulator, its most), and the most listed.
LIST_PAGE = 1000
MAX_LISTED = 100_000
#: How long to look for the versions a training request created before giving up.
VERSION_LOOKUP_SECONDS = 60.0


@dataclass(frozen=True)
class AitemsConnection:
    """What an ``aitems`` connection holds. The secret key stays out of ``repr``."""

    settings: HttpSettings
    access_key: str
    secret_key: str = field(repr=False)
    #: where the datasets' files are (``object_storage_endpoint``, ``object_storage_region`` extras)
    object_storage: ObjectStorageSettings = field(default_factory=ObjectStorageSettings)

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> AitemsConnection:
        """Read an ``aitems`` connection; a missing key or a bad setting fails naming the field."""
        if not conn.login or not conn.password:
            raise AuthenticationError(
                f"Connection {conn.conn_id!r} needs the access key ID (login) and secret key (password)"
            )
        extras = connection_extras(conn)
        try:
            settings = HttpSettings.from_extras(api.base_url(conn.host), conn.conn_id, extras)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        storage = ObjectStorageSettings.from_extras(conn.conn_id, extras)
        return cls(settings=settings, access_key=conn.login, secret_key=conn.password, object_storage=storage)

    def headers_for(self, request: ApiRequest[Any]) -> Callable[[], dict[str, str]]:
        """Gateway headers computed at each attempt: a retry carries a fresh timestamp."""
        url = self.settings.url(request.target)
        return lambda: api.signed_headers(request.method, url, self.access_key, self.secret_key)


class AitemsHook(BaseHook):
    """
    Interact with NAVER Cloud AiTEMS through the NCP API Gateway (signature v2 on every request).

    :param aitems_conn_id: the ``aitems`` connection (login = access key ID, password = secret key).
    """

    conn_name_attr = "aitems_conn_id"
    default_conn_name = "aitems_default"
    conn_type = "aitems"
    hook_name = "AiTEMS (NAVER Cloud)"

    def __init__(self, aitems_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aitems_conn_id = aitems_conn_id

    @cached_property
    def connection_info(self) -> AitemsConnection:
        """The connection's keys and HTTP settings, read once per hook (network secrets masked)."""
        info = AitemsConnection.from_connection(self.get_connection(self.aitems_conn_id))
        mask_network_secrets(info.settings.network)
        return info

    @cached_property
    def _transport(self) -> SyncTransport:
        return SyncTransport(self.connection_info.settings, api.map_error, self.log)

    def call(self, request: ApiRequest[T], *, reconcile: Callable[[], T | None] | None = None) -> T:
        """Send one request built by :mod:`airflow_provider_predone.protocol.aitems`, signed."""
        return self._transport.send(request, self.connection_info.headers_for(request), reconcile=reconcile)

    def test_connection(self) -> tuple[bool, str]:
        """
        The UI's "Test" button and ``airflow connections test``: one signed call (list services)
        in a single attempt, no retries (see :func:`..hooks._http.single_attempt_failure`).
        """
        try:
            info = self.connection_info
            once = SyncTransport(dataclasses.replace(info.settings, max_retries=0), api.map_error, self.log)
            request = api.list_services()
            try:
                services = once.send(request, info.headers_for(request))
            finally:
                once.close()
        except TransientApiError as exc:
            return False, single_attempt_failure(self.connection_info.settings.base_url, exc)
        except Exception as exc:
            return False, reason(exc)  # a person testing a connection: no task to retry
        return (
            True,
            f"Signed request accepted by {self.connection_info.settings.base_url} ({len(services)} services)",
        )

    def list_services(self) -> list[dict[str, Any]]:
        """List services (``GET /services``): every service of the account, with its ``serviceId``."""
        return self.call(api.list_services())

    def create_service(self, name: str, service_type: str = "batch", description: str | None = None) -> dict[str, Any]:
        """A1: create a service. A lost answer is reconciled by looking the name up."""

        return self.call(api.create_service(name, service_type, description), reconcile=lambda: self.find_service(name))

    def list_trainings(self, service_id: str, *, is_recent: bool = True) -> list[dict[str, Any]]:
        """A4 (newest first)."""
        return self.call(api.list_trainings(service_id, is_recent=is_recent))

    def get_training(self, service_id: str, train_type: str, version: str) -> dict[str, Any]:
        """A5 View training."""
        return self.call(api.get_training(service_id, train_type, version))

    def request_training(
        self,
        service_id: str,
        train_types: Sequence[str],
        *,
        hp_config: Mapping[str, Any] | None = None,
        description: str | None = None,
        extra_hp_options: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """
        A2: start one training per type and return ``{type: version}`` of the new trainings.

        The request's answer does not document the versions, so they are found in the list
        of recent trainings: a version that differs from the one before the request is ours.
        A lost answer is reconciled the same way, so a type is never trained twice.
        """
        types = api.validate_train_types(train_types)
        before = api.latest_versions(self.list_trainings(service_id))

        def started() -> dict[str, Any] | None:
            now = api.latest_versions(self.list_trainings(service_id))
            return {} if any(now.get(t) not in (None, before.get(t)) for t in types) else None

        request = api.request_training(service_id, types, hp_config, description, extra_hp_options)
        self.call(request, reconcile=started)
        return self.new_versions(service_id, types, before)

    def new_versions(
        self,
        service_id: str,
        train_types: Sequence[str],
        before: Mapping[str, str],
        wait: float = VERSION_LOOKUP_SECONDS,
    ) -> dict[str, str]:
        """Wait (briefly) until every type lists a version other than ``before``'s."""
        deadline = time.monotonic() + wait
        while True:
            now = api.latest_versions(self.list_trainings(service_id))
            found = {t: now[t] for t in train_types if now.get(t) not in (None, before.get(t))}
            if len(found) == len(train_types):
                return found
            if time.monotonic() >= deadline:
                raise UnexpectedResponseError(
                    f"Training was requested for service {service_id}, but no new version appeared for "
                    f"{sorted(set(train_types) - set(found))} within {wait:.0f} s",
                    endpoint="List trainings",
                )
            time.sleep(1.0)

    @cached_property
    def object_storage(self) -> ObjectStorageClient:
        """
        The connection's NCP Object Storage (where datasets' files are), signed with the same keys;
        needs boto3 (the ``aitems`` extra).
        """
        info = self.connection_info
        return ObjectStorageClient(info.object_storage, info.access_key, info.secret_key, info.settings, log=self.log)

    # --- data (schemas and datasets) ---

    def get_default_schema(self, dataset_type: str) -> dict[str, Any]:
        """The required default schema of ``dataset_type`` (``name``, ``fields``)."""
        return self.call(api.get_default_schema(dataset_type))

    def create_schema(
        self, dataset_type: str, name: str, fields: Sequence[Mapping[str, Any]], description: str | None = None
    ) -> dict[str, Any]:
        """Create a schema. A lost answer is reconciled by reading the schema of that name."""

        def already_created() -> dict[str, Any] | None:
            return self.find_schema(name)

        return self.call(api.create_schema(dataset_type, name, fields, description), reconcile=already_created)

    def validate_schema(
        self, dataset_type: str, name: str, fields: Sequence[Mapping[str, Any]], description: str | None = None
    ) -> dict[str, Any]:
        """Ask the service whether a schema would be accepted; a refusal raises :class:`BadRequestError`."""
        return self.call(api.validate_schema(dataset_type, name, fields, description))

    def list_schemas(self, dataset_type: str | None = None) -> list[dict[str, Any]]:
        """Every schema (of ``dataset_type``, when given)."""
        return self.call(api.list_schemas(dataset_type))

    def get_schema(self, name: str) -> dict[str, Any]:
        """One schema, by name; :class:`NotFoundError` when there is none."""
        return self.call(api.get_schema(name))

    def find_schema(self, name: str) -> dict[str, Any] | None:
        """The schema called ``name``, or ``None``."""
        try:
            return self.get_schema(name)
        except NotFoundError:
            return None

    def create_dataset(
        self,
        dataset_type: str,
        name: str,
        schema_name: str,
        bucket: str,
        key: str,
        description: str | None = None,
    ) -> dict[str, Any]:
        """
        Register a dataset from Object Storage (``key``: a file or a prefix); the answer has its
        ``datasetId``. A lost answer is reconciled by the dataset's name, so it is registered once.
        """
        request = api.create_dataset(dataset_type, name, schema_name, bucket, key, description)
        return self.call(request, reconcile=lambda: self.find_dataset(name))

    def list_datasets(self) -> list[dict[str, Any]]:
        """Every dataset of the account, each with its ``datasetId``, ``type``, ``name`` and ``status``."""
        found: list[dict[str, Any]] = []
        # Page by page (1,000 at most each), bounded: a name is looked up among every dataset.
        for offset in range(0, MAX_LISTED, LIST_PAGE):
            page = self.call(api.list_datasets(offset=offset, limit=LIST_PAGE))
            found += page
            if len(page) < LIST_PAGE:
                break
        return found

    def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """One dataset: ``status``, ``osInfo``, ``connectedServices``, dates."""
        return self.call(api.get_dataset(dataset_id))

    def find_dataset(self, name: str) -> dict[str, Any] | None:
        """The dataset called ``name`` (the newest, should several share it), or ``None``."""
        found = [d for d in self.list_datasets() if d.get("name") == name and d.get("datasetId") is not None]
        return max(found, key=lambda d: str(d.get("createdDate") or "")) if found else None

    # --- services ---

    def get_service(self, service_id: str) -> dict[str, Any]:
        """Read one service (``GET /services/{serviceId}``), with its ``status``."""
        return self.call(api.get_service(service_id))

    def find_service(self, name: str) -> dict[str, Any] | None:
        """The service named ``name`` (names are unique in an account), or ``None``."""
        return next((s for s in self.list_services() if s.get("name") == name), None)

    def get_or_create_service(
        self, name: str, service_type: str = "batch", description: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """
        The service named ``name``, created when there is none; ``(service, created)``.

        Exactly once: the name is looked up first, a lost create answer is reconciled by the
        name (:meth:`create_service`), and a create refused because another task made the
        service in between finds that one.

        :raises InvalidInputError: when the service exists with another type.
        """
        api.validate_service_name(name)
        if service_type not in api.SERVICE_TYPES:
            raise InvalidInputError(f"service type must be one of {list(api.SERVICE_TYPES)}, got {service_type!r}")
        service, created = self.find_service(name), False
        if service is None:
            try:
                service, created = self.create_service(name, service_type, description), True
            except BadRequestError:
                service = self.find_service(name)  # created by someone else meanwhile
                if service is None:
                    raise
        if service.get("type") not in (None, service_type):
            raise InvalidInputError(
                f"service {name!r} ({service.get('serviceId')}) exists with type {service.get('type')!r}, "
                f"not {service_type!r}: pick another name or service_type"
            )
        return service, created

    def link_datasets(self, service_id: str, dataset_ids: Any) -> dict[str, Any]:
        """
        Link a service to one user, one item and one interaction dataset.

        :param dataset_ids: ``{"user": id, "item": id, "interaction": id}`` (types checked before
            sending) or a list of the three ids.
        """
        return self.call(api.link_datasets(service_id, dataset_ids))

    def delete_service(self, service_id: str, *, missing_ok: bool = False) -> bool:
        """Delete a service; ``False`` when it was already gone and ``missing_ok``."""
        return self._delete(api.delete_service(service_id), api.get_service(service_id), missing_ok)

    def delete_dataset(self, dataset_id: str, *, missing_ok: bool = False) -> bool:
        """Delete a dataset; ``False`` when it was already gone and ``missing_ok``."""
        return self._delete(api.delete_dataset(dataset_id), api.get_dataset(dataset_id), missing_ok)

    def delete_schema(self, name: str, *, missing_ok: bool = False) -> bool:
        """Delete a schema; ``False`` when it was already gone and ``missing_ok``."""
        return self._delete(api.delete_schema(name), api.get_schema(name), missing_ok)

    def _delete(self, request: ApiRequest[Any], read: ApiRequest[Any], missing_ok: bool) -> bool:
        """
        Send a delete. Before a re-send (the answer was lost) the resource is read: gone means
        the first attempt deleted it, so a retry never reports our own deletion as "not found".
        """

        def deleted() -> dict[str, Any] | None:
            try:
                self.call(read)
            except NotFoundError:
                return {}
            return None

        try:
            self.call(request, reconcile=deleted)
        except NotFoundError:
            if not missing_ok:
                raise
            self.log.info("%s: already gone", request.label)
            return False
        return True

    # --- interval ---

    def set_interval(self, service_id: str, term: str) -> dict[str, Any]:
        """Set an interval service's update cycle: ``hour1``, ``hour3``, ``hour6`` or ``hour12``."""
        return self.call(api.set_interval(service_id, term))

    def start_schedule(
        self,
        service_id: str,
        train_types: Sequence[str],
        *,
        hp_config: Mapping[str, Any] | None = None,
        description: str | None = None,
        extra_hp_options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """
        Start an interval service's cycle training. A lost answer is reconciled by the service's
        status (``scheduled``), so a start is never sent twice.
        """
        request = api.schedule(service_id, "start", train_types, hp_config, description, extra_hp_options)
        return self.call(request, reconcile=self._scheduled(service_id, True))

    def stop_schedule(self, service_id: str) -> dict[str, Any]:
        """Stop an interval service's cycle training (a lost answer is reconciled by the service's status)."""
        return self.call(api.schedule(service_id, "stop"), reconcile=self._scheduled(service_id, False))

    def _scheduled(self, service_id: str, wanted: bool) -> Callable[[], dict[str, Any] | None]:
        def reached() -> dict[str, Any] | None:
            status = self.get_service(service_id).get("status")
            return {"status": status} if (status in api.SCHEDULED_SERVICE_STATUSES) is wanted else None

        return reached

    @cached_property
    def _single_attempt(self) -> SyncTransport:
        """A transport that sends once: pushes retry by themselves, only what certainly was not applied."""
        settings = dataclasses.replace(self.connection_info.settings, max_retries=0)
        return SyncTransport(settings, api.map_error, self.log)

    def push_rows(self, service_id: str, dataset_id: str, dataset_type: str, rows: list[dict[str, Any]]) -> None:
        """
        Add rows to a dataset of an interval service (``value``: rows as JSON objects).

        A push is resent only when an answer refused it (429, 500, 503: nothing was added);
        when the rows were sent and no answer says what became of them (none came, or a 2xx
        that is not ``true``: see :func:`~..protocol.aitems.push_in_doubt`), the service may have
        added them and has no read-back, so this raises :class:`RowsInDoubtError` instead of
        sending them twice. Any other error answer (400, 401, 404, 413) refused the push.

        :raises RowsInDoubtError: when the push is in doubt.
        """
        request = api.push_rows(service_id, dataset_id, dataset_type, rows)
        headers = self.connection_info.headers_for(request)

        def once() -> None:
            try:
                # reconcile is never called: this transport does not retry
                self._single_attempt.send(request, headers, reconcile=lambda: None)
            except ApiError as exc:
                if api.push_refused(exc) or not api.push_in_doubt(exc):
                    raise
                raise RowsInDoubtError(
                    f"{request.label}: {len(rows)} rows were sent but no answer said whether they were "
                    f"added ({reason(exc)})",
                    endpoint=request.name,
                    http_status=exc.http_status,
                ) from None

        def log_retry(state: tenacity.RetryCallState) -> None:
            self.log.warning("%s: %s", request.label, describe_retry(state))

        policy = retry_policy(self.connection_info.settings, log_retry)
        # The iterator form leaves no reference cycle behind (see the transport's retries).
        for attempt in tenacity.Retrying(**{**policy, "retry": tenacity.retry_if_exception(api.push_refused)}):
            with attempt:
                once()

    def list_updates(
        self, service_id: str, *, train_type: str | None = None, train_version: str | None = None
    ) -> list[dict[str, Any]]:
        """
        The incremental-update history of a service. NAVER lists one training version's updates
        at a time; without ``train_version`` the service's recent trainings (of ``train_type``,
        or of every type) are listed, each update with its ``type`` and ``trainVersion``.
        """
        if train_type is not None and train_version is not None:
            return self.call(api.list_updates(service_id, train_type, train_version))
        if train_version is not None:
            raise InvalidInputError("list_updates: train_version needs its train_type")
        versions = api.latest_versions(self.list_trainings(service_id))
        updates: list[dict[str, Any]] = []
        for kind, version in versions.items():
            if train_type in (None, kind):
                found = self.call(api.list_updates(service_id, kind, version))
                updates += [{"type": kind, **u, "trainVersion": version} for u in found]
        return updates

    # --- recommendations ---

    def lookup(self, service_id: str, train_type: str, target_id: str | None = None) -> dict[str, Any]:
        """
        Recommendations of one target (``{"field", "values"}``); ``pop`` takes no target.
        NAVER labels this endpoint a test of the training result.
        """
        return self.call(api.lookup(service_id, train_type, target_id))

    @asynccontextmanager
    async def async_client(self, *, retry: bool = True) -> AsyncIterator[AitemsAsyncClient]:
        """
        An async client (connection resolved once, one shared session) for triggers and lookups.

        :param retry: retry transient failures; ``False`` sends each request once, for a caller
            that retries by itself (batch lookups free a target's request slot while it waits).
        """
        from airflow.providers.common.compat.connection import get_async_connection

        conn = await get_async_connection(self.aitems_conn_id, hook=self)
        info = AitemsConnection.from_connection(conn)
        await amask_network_secrets(info.settings.network)
        warn_unverified(info.settings.network, info.settings.conn_id, self.log)
        key = f"aitems:{info.settings.conn_id}:{info.settings.base_url}"
        async with shared_session(key, info.settings.network) as session:
            settings = info.settings if retry else dataclasses.replace(info.settings, max_retries=0)
            yield AitemsAsyncClient(info, AsyncTransport(settings, api.map_error, session, self.log))


class AitemsAsyncClient:
    """Any request of :mod:`~..protocol.aitems`, signed, over one session; built by :meth:`AitemsHook.async_client`."""

    def __init__(self, info: AitemsConnection, transport: AsyncTransport) -> None:
        self.info = info
        self._transport = transport

    async def call(self, request: ApiRequest[T]) -> T:
        """Send one idempotent request, signed at each attempt."""
        return await self._transport.send(request, self.info.headers_for(request))
