"""The service as deployed, for hostile-input tests: uvicorn in a child process with
BOOKBRIDGE_ENV=production (its own memory, measured from /proc), and the network faults it
must survive: a PostgreSQL that goes away (a TCP proxy we can cut) and a Redis that hangs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests import auth_helpers
from tests.live import free_port


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    pid: int

    @property
    def graphql(self) -> str:
        return f"{self.url}/graphql"

    def memory_kb(self, field: str = "VmRSS") -> int:
        """VmRSS (resident now) or VmHWM (peak resident) of the server process, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} for {self.pid}")


@contextlib.contextmanager
def production_server(database_url: str, **env: str) -> Iterator[Server]:
    """`bookbridge` under uvicorn in a child process, production settings, on a free port."""
    port = free_port()
    environment = {
        **os.environ,
        "BOOKBRIDGE_ENV": "production",
        "DATABASE_URL": database_url,
        "BOOKBRIDGE_JWT_SECRET": auth_helpers.SECRET,
        "BOOKBRIDGE_LOG_LEVEL": "WARNING",
        "BOOKBRIDGE_DB_POOL_SIZE": "4",
        "BOOKBRIDGE_DB_MAX_OVERFLOW": "2",
        **env,
    }
    if "REDIS_URL" not in env:
        environment.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "uvicorn", "app.server.factory:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, process, log)
            yield Server(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: object) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            raise RuntimeError(f"server exited: {log.read()[-2000:]!r}")  # type: ignore[attr-defined]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not start in 30 s")


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`; `cut()` drops every connection and refuses new
    ones (a PostgreSQL restart as clients see it) until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def close(self) -> None:
        self._stopped = True
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class HungRedis:
    """A TCP server that accepts and reads but never answers: a hung Redis. Counts the
    connections made to it (a client that gave up on one opens the next)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received = b""
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self._listener.close()
        for client in self._clients:
            client.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._clients.append(client)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._read, args=(client,), daemon=True).start()

    def _read(self, client: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    self.received += data
        except OSError:
            pass


async def pipelined_posts(
    server: Server, path: str, bodies: list[bytes], window: int = 64
) -> list[int]:
    """POST each JSON body on one keep-alive connection, `window` requests in flight (HTTP/1.1
    pipelining): the statuses, in order. A lean client, so the server's cost is what is timed."""
    port = int(server.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses: list[int] = []
    try:
        for start in range(0, len(bodies), window):
            chunk = bodies[start : start + window]
            writer.write(
                b"".join(
                    b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
                    for body in chunk
                )
            )
            await writer.drain()
            for _ in chunk:
                head = await reader.readuntil(b"\r\n\r\n")
                statuses.append(int(head.split(b" ", 2)[1]))
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()
    return statuses
