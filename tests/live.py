"""A real bookbridge served over loopback HTTP for end-to-end tests (uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from app.core.settings import Settings
from app.server.factory import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def admin_token() -> str | None:
    """An admin bearer token for writes (None while the app has no auth: writes are open)."""
    try:
        from tests.auth_helpers import ADMIN
    except ImportError:
        return None
    return ADMIN


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Run the app (its own lifespan and engines) on a free loopback port; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bookbridge-live", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a loaded 2-core machine can take 20 s+
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
