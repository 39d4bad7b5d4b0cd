"""
PostgreSQL and Redis from Debian's packages, as throw-away servers for the cluster tests: data
in a temporary directory, a free port on 127.0.0.1, nothing kept on disk afterwards.

PostgreSQL refuses to run as root, so when the tests run as root (CI) its programs run as the
``postgres`` user the Debian package creates; the data directory is made theirs.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

from airflow_cluster import free_port
from helpers import wait_for


def _postgres_bin(program: str) -> str:
    """A PostgreSQL program: Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=lambda p: int(p.split("/")[4]))
    path = found[-1] if found else shutil.which(program)
    if path is None:
        raise RuntimeError(f"{program} not found: install Debian's postgresql (make cluster does)")
    return path


class Postgres:
    """``initdb`` + ``postgres`` on 127.0.0.1:``port``, trust authentication, database ``airflow``."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are private to root, and postgres must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="predone-cluster-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def _run(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            list(args), user=self.user, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self) -> Postgres:
        if not self.data.exists():
            self._run(_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        with self.log.open("ab") as sink:
            # fmt: off
            self.process = subprocess.Popen(
                [
                    _postgres_bin("postgres"),
                    "-D", str(self.data),
                    "-h", "127.0.0.1",
                    "-p", str(self.port),
                    "-k", str(self.root),  # the unix socket, in the temp dir
                    "-c", "max_connections=300",
                    "-c", "fsync=off",  # throw-away data: durability buys nothing here
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                ],
                user=self.user,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
            # fmt: on
        wait_for("PostgreSQL to accept connections", self._ready, timeout=60, interval=0.2)
        if not self.query("SELECT 1 FROM pg_database WHERE datname = 'airflow'", dbname="postgres"):
            self.execute("CREATE DATABASE airflow", dbname="postgres")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"postgres exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            self.query("SELECT 1", dbname="postgres")
        except Exception:
            return False
        return True

    def connect(self, dbname: str = "airflow") -> Any:
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, connect_timeout=5)

    def query(self, sql: str, *params: Any, dbname: str = "airflow") -> list[dict[str, Any]]:
        import psycopg2.extras

        with closing(self.connect(dbname)) as db, db.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params or None)
            return [dict(row) for row in cur.fetchall()]

    def execute(self, sql: str, dbname: str = "airflow") -> None:
        with closing(self.connect(dbname)) as db:
            db.autocommit = True
            with db.cursor() as cur:
                cur.execute(sql)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions and close every connection)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
            with suppress(ProcessLookupError):
                os.kill(process.pid, sig)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def dump(self) -> str:
        """Every table of the Airflow database, as ``pg_dump`` writes it (data included)."""
        return self._run(_postgres_bin("pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "airflow")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """``redis-server`` on 127.0.0.1:``port``, nothing saved to disk."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="predone-cluster-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Redis:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        with (self.root / "redis.log").open("ab") as sink:
            # fmt: off
            self.process = subprocess.Popen(
                [
                    server,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--dir", str(self.root),
                    "--save", "",
                    "--appendonly", "no",
                    "--protected-mode", "yes",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            # fmt: on
        wait_for("Redis to answer", self._ready, timeout=30, interval=0.1)
        return self

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited {self.process.returncode}")
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def dump(self) -> str:
        """Every key and its value (strings, lists, hashes, sets, sorted sets), as text."""
        client, out = self.client(), []
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            value: Any = {
                "string": lambda k: client.get(k),
                "list": lambda k: client.lrange(k, 0, -1),
                "hash": lambda k: client.hgetall(k),
                "set": lambda k: client.smembers(k),
                "zset": lambda k: client.zrange(k, 0, -1),
            }.get(kind, lambda k: b"")(key)
            out.append(f"{key!r} {kind} {value!r}")
        return "\n".join(out)

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
