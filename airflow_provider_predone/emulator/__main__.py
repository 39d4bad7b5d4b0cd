"""``predone-emulator`` / ``python -m airflow_provider_predone.emulator``: serve until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
from collections.abc import Sequence

from airflow_provider_predone import _event_loop

from .app import running
from .config import EmulatorConfig

_HELP = {
    "host": "interface to bind",
    "port": "port; 0 picks a free one (read it from the printed line)",
    "secret_key": "the account secret key that Get API Key accepts",
    "aitems_access_key": "AiTEMS access key id",
    "aitems_secret_key": "AiTEMS secret key (signature v2)",
    "job_seconds": "how long a training, retraining or AiTEMS training takes",
    "build_seconds": "how long a prediction API stays building",
    "api_key_ttl": "lifetime of issued API keys, seconds",
    "url_ttl": "lifetime of presigned URLs, seconds",
    "inference_latency_ms": "time from an inference request's (or AiTEMS lookup's) arrival to its answer",
    "fault_rate": "test support (--test-controls): probability that a request gets a transient fault",
    "fault_seed": "seed of the fault sequence",
    "fault_kinds": "test support (--test-controls): the fault kinds drawn, comma-separated (e.g. slow); "
    "all of them when empty",
    "slow_seconds": "how long a 'slow' fault holds the answer",
    "retrain_upload_hold_before": "test support (--test-controls): seconds a retrain-data upload waits "
    "before its body is read",
    "retrain_upload_hold_after": "test support (--test-controls): seconds a completed retrain-data upload "
    "waits before its answer",
    "result_layout": "layout of result zips: summary-json, metrics-csv-ja, nested-json or no-metrics",
    "tls_cert": "serve HTTPS with this certificate (PEM); presigned URLs are then https too",
    "tls_key": "the private key of --tls-cert (PEM)",
    "tls_client_ca": "require client certificates signed by this CA (mutual TLS; needs --tls-cert)",
    "data_dir": "where uploads and results are stored (default: a temporary directory)",
    "object_storage_endpoint": "URL of the S3-compatible server AiTEMS datasets are read from, signed with "
    "the AiTEMS keys (e.g. a local moto server; default: none, datasets cannot be read)",
    "verbose": "access log on stderr, with each request's client address and port",
    "test_controls": "turn on the test-only controls: fault injection, upload holds and the admin endpoints "
    "that list every issued key or change the server (/_emulator/secrets, config, reset, expire-keys, finish-jobs); "
    "for tests on a machine of your own, never on a shared one",
}


def parse_args(argv: Sequence[str] | None = None) -> EmulatorConfig:
    """The command line as a config; every :class:`EmulatorConfig` field is a ``--kebab-case`` option."""
    parser = argparse.ArgumentParser(
        prog="predone-emulator",
        description="Local emulator of the Prediction One / Easy Predictive Analytics and AiTEMS APIs.",
    )
    defaults = EmulatorConfig()
    for field in dataclasses.fields(EmulatorConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=_HELP[field.name])
            continue
        kind = type(default) if default is not None else str
        # An option without a default (None: off) or whose help says its own gets no "(default: None)".
        text = _HELP[field.name]
        if default is not None and "(default:" not in text:
            text += " (default: %(default)s)"
        parser.add_argument(flag, type=kind, default=default, help=text)
    try:
        return EmulatorConfig(**vars(parser.parse_args(argv)))
    except ValueError as exc:
        parser.error(str(exc))


async def _serve(config: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running(config) as url:
        print(f"predone-emulator listening on {url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, print the listening line and serve until SIGINT or SIGTERM."""
    _event_loop.run(_serve(parse_args(argv)))


if __name__ == "__main__":
    main()
