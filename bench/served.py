"""The service as `bookbridge serve` builds it, plus one bench-only header: SQL statements run."""

from __future__ import annotations

import contextvars

from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookbridge.app.factory import create_app as create_bookbridge

_counter: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "bench_sql", default=None
)


def _count(*_: object) -> None:
    box = _counter.get()
    if box is not None:
        box[0] += 1


class SqlCounter:
    """Adds `x-bench-sql: <statements run for this request>` to every HTTP response, and
    answers `GET /_bench/inflight` with the requests this worker is still working on (a
    client that gave up, like wrk at the end of a run, leaves its request running)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_bench/inflight":
            body = str(self.inflight).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        self.inflight += 1
        try:
            await self._counted(scope, receive, send)
        finally:
            self.inflight -= 1

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        box = [0]
        _counter.set(box)

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-bench-sql", str(box[0]).encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, counted)


def create_app() -> ASGIApp:
    event.listen(Engine, "before_cursor_execute", _count)
    return SqlCounter(create_bookbridge())
