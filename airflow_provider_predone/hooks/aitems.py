"""Hook for NAVER Cloud AiTEMS (recommendation model training)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_predone.exceptions import (
    AuthenticationError,
    InvalidInputError,
    TransientApiError,
    UnexpectedResponseError,
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
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.protocol.common import (
    ApiRequest,
)

T = TypeVar("T")

#: How long to look for the versions a training request created before giving up.
VERSION_LOOKUP_SECONDS = 60.0


@dataclass(frozen=True)
class AitemsConnection:
    """What an ``aitems`` connection holds. The secret key stays out of ``repr``."""

    settings: HttpSettings
    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> AitemsConnection:
        """Read an ``aitems`` connection; a missing key or a bad setting fails naming the field."""
        if not conn.login or not conn.password:
            raise AuthenticationError(
                f"Connection {conn.conn_id!r} needs the access key ID (login) and secret key (password)"
            )
        try:
            settings = HttpSettings.from_extras(api.base_url(conn.host), conn.conn_id, connection_extras(conn))
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        return cls(settings=settings, access_key=conn.login, secret_key=conn.password)

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

        def already_created() -> dict[str, Any] | None:
            return next((s for s in self.list_services() if s.get("name") == name), None)

        return self.call(api.create_service(name, service_type, description), reconcile=already_created)

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

        self.call(api.request_training(service_id, types, hp_config, description), reconcile=started)
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

    # --- data (schemas and datasets) ---

    # --- services ---

    # --- interval ---

    # --- recommendations ---

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[AitemsAsyncClient]:
        """An async client (connection resolved once, one shared session) for triggers."""
        from airflow.providers.common.compat.connection import get_async_connection

        conn = await get_async_connection(self.aitems_conn_id, hook=self)
        info = AitemsConnection.from_connection(conn)
        await amask_network_secrets(info.settings.network)
        warn_unverified(info.settings.network, info.settings.conn_id, self.log)
        key = f"aitems:{info.settings.conn_id}:{info.settings.base_url}"
        async with shared_session(key, info.settings.network) as session:
            yield AitemsAsyncClient(info, AsyncTransport(info.settings, api.map_error, session, self.log))


class AitemsAsyncClient:
    """Any request of :mod:`~..protocol.aitems`, signed, over one session; built by :meth:`AitemsHook.async_client`."""

    def __init__(self, info: AitemsConnection, transport: AsyncTransport) -> None:
        self.info = info
        self._transport = transport

    async def call(self, request: ApiRequest[T]) -> T:
        """Send one idempotent request, signed at each attempt."""
        return await self._transport.send(request, self.info.headers_for(request))
