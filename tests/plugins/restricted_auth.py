"""An auth manager for the Models page's tests: Airflow's simple one, but ``outsider`` may not read some things."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

#: the DAGs and asset ids ``outsider`` may not read (set by the test)
HIDDEN_DAGS: set[str] = set()
HIDDEN_ASSETS: set[str] = set()


class RestrictedAuthManager(SimpleAuthManager):
    """Denies user ``outsider`` the DAGs in :data:`HIDDEN_DAGS` and the assets in :data:`HIDDEN_ASSETS`."""

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.get_name() == "outsider" and details is not None and details.id in HIDDEN_DAGS:
            return False
        return bool(super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details))

    def is_authorized_asset(self, *, method: Any, user: Any, details: Any = None) -> bool:
        if user.get_name() == "outsider" and details is not None and details.id in HIDDEN_ASSETS:
            return False
        return bool(super().is_authorized_asset(method=method, user=user, details=details))
