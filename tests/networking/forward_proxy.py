"""
A small forward proxy for the networking tests, run as its own process: ``CONNECT`` tunnels
(what clients use for https:// targets), optionally behind basic authentication.

Every tunnel is written to a JSON-lines log with the *local port of its outbound socket*, so
a test can match each request the emulator saw (it logs its peer's port) to a tunnel of this
proxy, and prove that nothing went around it. Plain-http requests are refused with 501: the
tests run everything over TLS.

    python tests/networking/forward_proxy.py --port 0 --log FILE [--auth USER:PASSWORD]

prints ``proxy listening on http://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
from typing import IO, Any

LISTENING = "proxy listening on "


class Proxy:
    def __init__(self, log: IO[str], auth: str | None) -> None:
        self.log = log
        self.expected = "Basic " + base64.b64encode(auth.encode()).decode() if auth else None

    def record(self, **entry: Any) -> None:
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_port = writer.get_extra_info("peername")[1]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" "), "", ""][:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if method != "CONNECT":
            self.record(event="refused", method=method, client_port=client_port, status=501)
            await self._answer(writer, b"501 Not Implemented")
            return
        if self.expected is not None and headers.get("proxy-authorization") != self.expected:
            # The header's value is never logged: it carries the password.
            given = "proxy-authorization" in headers
            self.record(event="refused", target=target, client_port=client_port, status=407, credentials=given)
            await self._answer(writer, b'407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"')
            return
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, ValueError):
            self.record(event="connect", target=target, client_port=client_port, status=502)
            await self._answer(writer, b"502 Bad Gateway")
            return
        upstream_port = up_writer.get_extra_info("sockname")[1]
        self.record(event="connect", target=target, client_port=client_port, upstream_port=upstream_port, status=200)
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: bytes) -> None:
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        try:
            await writer.drain()
        finally:
            writer.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(256 * 1024):
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()


async def serve(port: int, log_path: str, auth: str | None) -> None:
    with open(log_path, "a", encoding="utf-8") as log:  # noqa: ASYNC230 - opened once, before serving
        proxy = Proxy(log, auth)
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"{LISTENING}http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--auth", help="USER:PASSWORD required in Proxy-Authorization")
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.port, arguments.log, arguments.auth))


if __name__ == "__main__":
    main()
