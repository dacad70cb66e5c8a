"""Request bodies over HTTP: gzip in and out, size limits, gzip bombs, malformed and bad bodies."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
import zlib
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.runtime.services import Services
from app.server.body import (
    BodyError,
    GzipStream,
    JsonLimits,
    RequestBodyMiddleware,
    check_json_shape,
)
from tests import factories

QUERY = '{ book(id: "b0001") { id title publisher { id } } }'
JSON = {"content-type": "application/json"}
GZIP_JSON = {"content-type": "application/json", "content-encoding": "gzip"}


def gzip_bomb(mib: int = 1024) -> bytes:
    """A valid gzip of `mib` MiB of zeros, about 1 KiB per MiB: 1 MiB that inflates to 1 GiB."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0x5B64C2B0 if mib == 1024 else zlib.crc32(bytes(mib << 20))
    trailer = struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + block * mib + deflate.flush() + trailer


def errors(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    message: str = body["errors"][0]["message"]
    return message


async def test_gzip_request_with_a_real_query(services: Services, http: httpx.AsyncClient) -> None:
    await factories.catalog(services, books=3)
    body = gzip.compress(orjson.dumps({"query": QUERY}))
    response = await http.post("/graphql", content=body, headers=GZIP_JSON)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["book"]["id"] == "b0001"


async def test_response_is_gzipped_when_accepted(
    services: Services, http: httpx.AsyncClient
) -> None:
    await factories.catalog(services, books=30)
    query = {"query": "{ books(first: 30) { edges { node { id title description tags } } } }"}
    response = await http.post("/graphql", json=query, headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["data"]["books"]["edges"]) == 30  # httpx inflated it
    plain = await http.post("/graphql", json=query, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == response.json()


async def test_gzip_bomb_is_refused_with_flat_memory(http: httpx.AsyncClient) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 1.1 * (1 << 20)
    tracemalloc.start()
    try:
        response = await http.post("/graphql", content=bomb, headers=GZIP_JSON)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert "decompressed request body exceeds" in errors(response)
    assert peak < 100 << 20  # the 64 MiB limit plus one step, never the 1 GiB


def test_gzip_stream_stops_one_step_past_the_limit() -> None:
    stream = GzipStream(limit=4 << 20)
    with pytest.raises(BodyError) as refused:
        for _ in stream.feed(gzip_bomb(64)):
            pass
    assert refused.value.status == 413
    assert stream.size <= (4 << 20) + (1 << 20)


def test_gzip_stream_reads_concatenated_members() -> None:
    stream = GzipStream(limit=1 << 20)
    out = b"".join(stream.feed(gzip.compress(b"hello ") + gzip.compress(b"world")))
    stream.finish()
    assert out == b"hello world"


async def test_truncated_gzip_is_400(http: httpx.AsyncClient) -> None:
    body = gzip.compress(orjson.dumps({"query": QUERY}))
    response = await http.post("/graphql", content=body[: len(body) // 2], headers=GZIP_JSON)
    assert response.status_code == 400
    assert "truncated gzip" in errors(response)


async def test_corrupt_gzip_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", content=b"not gzip at all", headers=GZIP_JSON)
    assert response.status_code == 400
    assert "not valid gzip" in errors(response)


async def test_unknown_content_encoding_is_415(http: httpx.AsyncClient) -> None:
    headers = {**JSON, "content-encoding": "br"}
    response = await http.post("/graphql", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert "Content-Encoding" in errors(response)


async def test_malformed_json_is_400_with_a_json_error(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", content=b'{"query": "{ books', headers=JSON)
    assert response.status_code == 400
    assert "not valid JSON" in errors(response)
    scalar = await http.post("/graphql", content=b"42", headers=JSON)
    assert scalar.status_code == 400
    assert "JSON object" in errors(scalar)


async def test_bad_utf8_is_400(http: httpx.AsyncClient) -> None:
    body = b'{"query": "{ book(id: \\"\xff\xfe\\") { id } }"}'
    response = await http.post("/graphql", content=body, headers=JSON)
    assert response.status_code == 400
    assert "not valid UTF-8" in errors(response)
    zipped = await http.post("/graphql", content=gzip.compress(body), headers=GZIP_JSON)
    assert zipped.status_code == 400
    assert "not valid UTF-8" in errors(zipped)


async def test_content_length_over_the_limit_is_413_before_reading() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app must not be called")

    async def receive() -> Message:
        raise AssertionError("the body must not be read")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = RequestBodyMiddleware(app, max_body_bytes=1000)
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1001")],
    }
    await middleware(scope, receive, send)
    assert sent[0]["status"] == 413
    assert b"exceeds 1000 bytes" in sent[1]["body"]


async def test_plain_body_over_the_limit_is_413(services: Services) -> None:
    from app.server.factory import create_app

    small = services.settings.model_copy(update={"max_body_bytes": 1000})
    app = create_app(small, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        big = orjson.dumps({"query": QUERY, "variables": {"pad": "x" * 2000}})
        response = await client.post("/graphql", content=big, headers=JSON)
        assert response.status_code == 413
        ok = await client.post("/graphql", json={"query": "{ subjects { id } }"})
        assert ok.status_code == 200


def test_json_shape_counts_structure_outside_strings_only() -> None:
    limits = JsonLimits(max_depth=3, max_elements=10)
    check_json_shape(b'{"a": [[1]]}', limits)  # depth 3
    with pytest.raises(BodyError, match="deeper than 3"):
        check_json_shape(b'{"a": [[[1]]]}', limits)
    # brackets, commas and escaped quotes inside strings are text, not structure
    check_json_shape(b'{"a": "[[[[{{{{,,,,,,,,,,,,\\"]]]]"}', limits)
    check_json_shape(b'{"a\\\\": ["\\\\", "x"]}', limits)
    with pytest.raises(BodyError, match="more than 10 values") as refused:
        check_json_shape(b"[" + b"1," * 20 + b"1]", limits)
    assert refused.value.status == 413


def test_gzip_stream_refuses_an_inflate_ratio_past_the_first_mebibyte() -> None:
    zeros = gzip.compress(b"0" * (8 << 20))
    stream = GzipStream(limit=64 << 20, max_ratio=100)
    with pytest.raises(BodyError, match="inflates more than 100 times"):
        for _ in stream.feed(zeros):
            pass
    assert stream.size <= (2 << 20)  # stopped one step past the first MiB
    text = gzip.compress(b'{"query": "{ subjects { id } }"}' * 1000)  # 32 KB, ratio ~300
    assert b"".join(GzipStream(limit=64 << 20, max_ratio=100).feed(text))  # under 1 MiB: fine
