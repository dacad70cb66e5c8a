"""app/server/gzip.py answers every response as Starlette's GZipMiddleware does."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from starlette.middleware.gzip import GZipMiddleware as StarletteGZip
from starlette.types import Message, Receive, Scope, Send

from app.server.gzip import GZipMiddleware


def responder(
    status: int, headers: list[tuple[bytes, bytes]], bodies: list[bytes], kind: str = "body"
) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        if kind == "pathsend":
            await send({"type": "http.response.pathsend", "path": "/dev/null"})
            return
        for i, body in enumerate(bodies):
            more = i < len(bodies) - 1
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


async def answer(middleware: Any, app: Any, accept: bytes | None) -> list[Message]:
    headers = [(b"host", b"test")] + ([(b"accept-encoding", accept)] if accept else [])
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append({**message, "headers": list(message.get("headers", []))})

    await middleware(app, minimum_size=500, compresslevel=6)(scope, receive, send)
    return sent


JSON = [(b"content-type", b"application/json")]
CASES = {
    "small": (200, [*JSON, (b"content-length", b"11")], [b'{"data":{}}']),
    "large": (200, [*JSON, (b"content-length", b"2000")], [b"x" * 2000]),
    "large with a vary": (200, [*JSON, (b"vary", b"Origin"), (b"vary", b"Cookie")], [b"y" * 900]),
    "streamed": (200, JSON, [b"a" * 10, b"b" * 10, b""]),
    "encoded": (200, [*JSON, (b"content-encoding", b"br")], [b"z" * 900]),
    "partial": (206, JSON, [b"p" * 900]),
    "excluded type": (200, [(b"content-type", b"image/png")], [b"i" * 900]),
    "excluded family": (200, [(b"content-type", b"video/mp4; codecs=x")], [b"v" * 900]),
    "grpc": (200, [(b"content-type", b"application/grpc+proto")], [b"g" * 900]),
    "event stream": (200, [(b"content-type", b"text/event-stream")], [b"e" * 10, b"f" * 10]),
    "no content type": (200, [], [b"n" * 900]),
}


@pytest.mark.parametrize("accept", [None, b"identity", b"br", b"gzip, deflate", b"x-gzip"])
@pytest.mark.parametrize("case", sorted(CASES))
async def test_every_response_is_what_starlette_sends(case: str, accept: bytes | None) -> None:
    app = responder(*CASES[case])
    ours = await answer(GZipMiddleware, app, accept)
    theirs = await answer(StarletteGZip, app, accept)
    assert ours == theirs


@pytest.mark.parametrize("accept", [None, b"gzip"])
async def test_pathsend_is_passed_on_after_the_start(accept: bytes | None) -> None:
    app = responder(200, JSON, [], kind="pathsend")
    ours = await answer(GZipMiddleware, app, accept)
    assert ours == await answer(StarletteGZip, app, accept)
    assert [m["type"] for m in ours] == ["http.response.start", "http.response.pathsend"]


async def test_a_client_without_gzip_gets_vary_on_large_bodies_only() -> None:
    large = await answer(GZipMiddleware, responder(*CASES["large"]), None)
    assert (b"vary", b"Accept-Encoding") in large[0]["headers"]
    assert large[1]["body"] == b"x" * 2000
    small = await answer(GZipMiddleware, responder(*CASES["small"]), None)
    assert not any(k == b"vary" for k, _ in small[0]["headers"])
    merged = await answer(GZipMiddleware, responder(*CASES["large with a vary"]), None)
    assert [v for k, v in merged[0]["headers"] if k == b"vary"] == [
        b"Origin, Cookie, Accept-Encoding"
    ]


async def test_a_gzip_client_gets_a_gzip_body() -> None:
    sent = await answer(GZipMiddleware, responder(*CASES["large"]), b"gzip")
    assert (b"content-encoding", b"gzip") in sent[0]["headers"]
    assert gzip.decompress(sent[1]["body"]) == b"x" * 2000
