"""Settings of the emulator, shared by the command line, the admin endpoint and the launchers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Settings that inject faults or hold requests: test support, refused unless ``test_controls``.
TEST_CONTROL_SETTINGS = ("fault_rate", "fault_kinds", "retrain_upload_hold_before", "retrain_upload_hold_after")

# Settings that ``POST /_emulator/config`` may change while the server runs, with their types.
RUNTIME_SETTINGS: dict[str, type] = {
    "job_seconds": float,
    "build_seconds": float,
    "fault_rate": float,
    "fault_seed": int,
    "fault_kinds": str,
    "slow_seconds": float,
    "inference_latency_ms": float,
    "api_key_ttl": float,
    # Test support (not vendor behaviour): hold retrain-data uploads so a test can kill the
    # client at a precise moment. See "Admin endpoints" in docs/emulator.md.
    "retrain_upload_hold_before": float,
    "retrain_upload_hold_after": float,
}


@dataclass
class EmulatorConfig:
    """Everything the emulator can be told; field names match the ``--kebab-case`` CLI options.

    :param host: interface to bind.
    :param port: port to bind; ``0`` picks a free one.
    :param secret_key: the account secret key that Get API Key accepts.
    :param aitems_access_key: AiTEMS access key id.
    :param aitems_secret_key: AiTEMS secret key (signature v2).
    :param job_seconds: duration of a training, retraining or AiTEMS training.
    :param build_seconds: how long a prediction API stays ``building``.
    :param api_key_ttl: lifetime of issued API keys, in seconds.
    :param url_ttl: lifetime of presigned URLs, in seconds.
    :param inference_latency_ms: time from an inference request's (or an AiTEMS recommendations
        lookup's) arrival to its answer.
    :param fault_rate: probability that a vendor request gets a transient fault.
    :param fault_seed: seed of the fault sequence.
    :param fault_kinds: test support: the kinds of fault drawn, comma-separated (``slow`` or
        ``slow,http_503``...); empty for all of them.
    :param slow_seconds: how long a ``slow`` fault holds the answer.
    :param retrain_upload_hold_before: test support: seconds a retrain-data PUT waits before its
        body is read (dropped if its client went away meanwhile).
    :param retrain_upload_hold_after: test support: seconds a retrain-data PUT that completed
        (its job started) waits before it is answered.
    :param result_layout: how result zips are laid out: ``summary-json`` (``model_summary.json``),
        ``metrics-csv-ja`` (a Shift-JIS CSV with Japanese metric names), ``nested-json`` (a nested
        report with display names) or ``no-metrics``. The vendor's layout is undocumented.
    :param tls_cert: serve HTTPS with this certificate (PEM, chain included); presigned URLs
        are then ``https://`` too.
    :param tls_key: the private key of ``tls_cert`` (PEM).
    :param tls_client_ca: require a client certificate signed by this CA (mutual TLS).
    :param data_dir: where uploads and results are stored; ``None`` for a temporary directory.
    :param object_storage_endpoint: the S3-compatible server AiTEMS datasets are read from (in
        place of NCP Object Storage, signed with the AiTEMS keys); ``None``: datasets cannot be read.
    :param verbose: log every request on stderr.
    :param test_controls: turn on what only tests need: fault injection, upload holds and the
        admin endpoints that list every issued secret or change the server (``/_emulator/secrets``,
        ``config``, ``reset``, ``expire-keys``). Off by default, so an emulator started by hand
        never hands its keys to whoever asks.
    """

    host: str = "127.0.0.1"
    port: int = 0
    secret_key: str = "predone-demo-secret-key"  # noqa: S105 - the documented demo default
    aitems_access_key: str = "demo-aitems-access-key"
    aitems_secret_key: str = "demo-aitems-secret-key"  # noqa: S105 - the documented demo default
    job_seconds: float = 3.0
    build_seconds: float = 2.0
    api_key_ttl: float = 3600.0
    url_ttl: float = 900.0
    inference_latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault_seed: int = 0
    fault_kinds: str = ""
    slow_seconds: float = 35.0
    retrain_upload_hold_before: float = 0.0
    retrain_upload_hold_after: float = 0.0
    result_layout: str = "summary-json"
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    data_dir: str | None = None
    object_storage_endpoint: str | None = None
    verbose: bool = False
    test_controls: bool = False

    def __post_init__(self) -> None:
        from .training import RESULT_LAYOUTS

        if self.result_layout not in RESULT_LAYOUTS:
            raise ValueError(f"result_layout must be one of {', '.join(RESULT_LAYOUTS)}, got {self.result_layout!r}")
        self.fault_kinds = _fault_kinds(self.fault_kinds)
        endpoint = self.object_storage_endpoint
        if endpoint is not None and not (urlsplit(endpoint).scheme in ("http", "https") and urlsplit(endpoint).netloc):
            raise ValueError(f"object_storage_endpoint must be an http:// or https:// URL, got {endpoint!r}")
        if not self.test_controls:
            used = ", ".join(name for name in TEST_CONTROL_SETTINGS if getattr(self, name))
            if used:
                raise ValueError(f"{used} is test support: turn it on with --test-controls (test_controls=True)")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply runtime changes (the body of ``POST /_emulator/config``).

        :param changes: setting name to new value; only :data:`RUNTIME_SETTINGS` are accepted.
        :raises ValueError: for an unknown setting or a value of the wrong type or range.
        """
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            kind = RUNTIME_SETTINGS.get(name)
            if kind is None:
                raise ValueError(f"unknown setting {name!r}; accepted: {', '.join(RUNTIME_SETTINGS)}")
            if kind is str:
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
                converted[name] = _fault_kinds(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if kind is int and value != int(value):
                raise ValueError(f"{name} must be an integer")
            if value < 0 or (name == "fault_rate" and value > 1):
                raise ValueError(f"{name} is out of range")
            converted[name] = kind(value)
        for name, value in converted.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fault_kinds(value: str) -> str:
    """``fault_kinds`` checked and normalised (``" slow, http_503"`` -> ``"slow,http_503"``)."""
    from .faults import FAULT_KINDS

    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"fault_kinds: unknown kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}")
    return ",".join(kinds)
