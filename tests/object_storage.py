"""A real S3-compatible object storage for the tests: moto's server, started as a subprocess.

NCP Object Storage speaks the S3 API, so the tests and the emulator use moto's server in its
place (bound to 127.0.0.1, a free port), never a mock of the client. Importable as
``object_storage`` (the tests folder is on ``sys.path``); the fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from types import TracebackType
from typing import IO, Any

#: Region of the buckets (NCP's Korean region; moto accepts any name).
REGION = "kr-standard"
#: The key pair :meth:`ObjectStorageServer.client` signs with by default (any pair passes without ``auth``).
SETUP_KEYS = ("test-key", "test-secret")
_REQUEST_LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) (\S+) HTTP/[0-9.]+(?:\x1b\[[0-9;]*m)*" (\d{3})')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ObjectStorageServer:
    """
    ``python -m moto.server -H 127.0.0.1 -p <free port>``, waited for until it answers.

    The server's access log (werkzeug's, on stderr) goes to a temporary file, which
    :meth:`requests` reads: the tests check what the client sent (ListObjects V1, never V2).

    :param auth: check signatures and keys as S3 does (moto's IAM simulation): only keys made by
        :meth:`create_access_key` are accepted then.
    :param startup_timeout: seconds to wait for the server to answer.
    """

    def __init__(self, *, auth: bool = False, startup_timeout: float = 30.0) -> None:
        self.auth = auth
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[str] | None = None
        self._endpoint: str | None = None
        # Straight to the server, whatever proxy the environment names.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._endpoint is None:
            raise RuntimeError("the object storage server is not running")
        return self._endpoint

    def start(self) -> ObjectStorageServer:
        for _ in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            self._log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            env = {**os.environ, "NO_PROXY": "*", "no_proxy": "*"}
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            self._endpoint = f"http://127.0.0.1:{port}"
            if self._wait_until_answering():
                break
            self.stop()
        else:
            raise RuntimeError(f"moto's server did not start within {self.startup_timeout} s")
        if self.auth:
            self._moto_api("reset-auth", b"0")
        return self

    def _wait_until_answering(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with self._opener.open(f"{self.endpoint}/moto-api/data.json", timeout=2):
                    return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        return False

    def _moto_api(self, name: str, data: bytes) -> Any:
        # Not a form: flask would take the body for one and moto would read nothing.
        headers = {"Content-Type": "application/octet-stream"}
        request = urllib.request.Request(f"{self.endpoint}/moto-api/{name}", data=data, method="POST", headers=headers)
        with self._opener.open(request, timeout=30) as response:
            return json.load(response)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._endpoint = None

    def __enter__(self) -> ObjectStorageServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def requests(self) -> list[tuple[str, str, int]]:
        """Every request answered so far, as ``(method, path with query, status)``."""
        if self._log is None:
            return []
        self._log.flush()
        self._log.seek(0)
        found = [(m[1], m[2], int(m[3])) for m in map(_REQUEST_LINE.search, self._log.read().splitlines()) if m]
        self._log.seek(0, os.SEEK_END)
        return found

    def client(self, access_key: str = SETUP_KEYS[0], secret_key: str = SETUP_KEYS[1]) -> Any:
        """A plain boto3 S3 client of this server, for setting up and checking what the tests did."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", proxies={}),
        )

    def create_bucket(self, name: str | None = None, keys: tuple[str, str] | None = None) -> str:
        """
        Create a bucket and answer its name.

        :param name: the bucket's name; a fresh one when ``None``.
        :param keys: the key pair to sign with (one of :meth:`create_access_key` on an ``auth`` server).
        """
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        client = self.client(*keys) if keys else self.client()
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        return name

    def create_access_key(self) -> tuple[str, str]:
        """
        An IAM user allowed every S3 action, and its key pair, for an ``auth=True`` server.

        Its creation is let through moto's signature checks (``reset-auth``), which are back on after.
        """
        import boto3

        self._moto_api("reset-auth", b"inf")
        try:
            iam = boto3.client(
                "iam",
                endpoint_url=self.endpoint,
                region_name="us-east-1",
                aws_access_key_id="setup",
                aws_secret_access_key="setup",
            )
            user = f"tester-{uuid.uuid4().hex[:8]}"
            iam.create_user(UserName=user)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
        finally:
            if self.auth:
                self._moto_api("reset-auth", b"0")
        return key["AccessKeyId"], key["SecretAccessKey"]
