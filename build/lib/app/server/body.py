"""Request bodies: size limits, streamed gzip decoding and JSON checks before the app sees them."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# scope key: (body, its parsed JSON) for the app behind, which then need not parse it again
PARSED_JSON = "bookbridge.parsed_json"
_STEP = 1 << 20  # inflate at most 1 MiB per call, so a bomb is caught after one step over the limit
_IDENTITY = {"", "identity"}
_GZIP = {"gzip", "x-gzip"}


class BodyError(Exception):
    """A request body refused before it reaches the app: HTTP status and a client-safe message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GzipStream:
    """Incremental gzip decoder (multi-member aware) that refuses output beyond `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterable[bytes]:
        while data:
            try:
                out = self._inflater.decompress(data, min(_STEP, self.limit - self.size + 1))
            except zlib.error as exc:
                raise BodyError(400, f"request body is not valid gzip: {exc}") from None
            self.size += len(out)
            if self.size > self.limit:
                raise BodyError(413, f"decompressed request body exceeds {self.limit} bytes")
            if out:
                yield out
            if self._inflater.eof:
                data = self._inflater.unused_data  # a further gzip member may follow
                if data:
                    self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = self._inflater.unconsumed_tail

    def finish(self) -> None:
        if not self._inflater.eof:
            raise BodyError(400, "request body is truncated gzip (no end of stream)")


class RequestBodyMiddleware:
    """Pure ASGI middleware: reads the whole body within limits, gunzips it, checks JSON bodies.

    `max_body_bytes` bounds the bytes read from the client (the compressed size, or the plain
    size when not compressed); `max_decompressed_bytes` bounds what a gzip body inflates to.
    Refusals are JSON `{"errors": [{"message", "extensions": {"code"}}]}` with 400/413/415.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = 16 << 20,
        max_decompressed_bytes: int = 64 << 20,
        json_paths: tuple[str, ...] = ("/graphql",),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.json_paths = json_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        parsed: object = None
        try:
            body = await self._read(headers, receive)
            if scope["path"] in self.json_paths and _is_json(headers):
                parsed = _check_json(body)
        except BodyError as exc:
            await _refuse(send, exc)
            return
        scope = dict(scope)
        if parsed is not None:
            scope[PARSED_JSON] = (body, parsed)
        scope["headers"] = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")
        ] + [(b"content-length", str(len(body)).encode())]
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, headers: Headers, receive: Receive) -> bytes:
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in _IDENTITY and encoding not in _GZIP:
            raise BodyError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or identity")
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BodyError(400, "Content-Length is not a number")
            if int(length) > self.max_body_bytes:
                raise BodyError(413, f"request body exceeds {self.max_body_bytes} bytes")
        gzip = GzipStream(self.max_decompressed_bytes) if encoding in _GZIP else None
        parts: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BodyError(400, "client disconnected before the body was complete")
            chunk: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            received += len(chunk)
            if received > self.max_body_bytes:
                raise BodyError(413, f"request body exceeds {self.max_body_bytes} bytes")
            if gzip is None:
                parts.append(chunk)
            else:
                parts.extend(gzip.feed(chunk))
        if gzip is not None:
            gzip.finish()
        return b"".join(parts)


def _is_json(headers: Headers) -> bool:
    return "json" in headers.get("content-type", "").split(";", 1)[0].lower()


def _check_json(body: bytes) -> object:
    """The parsed body; BodyError (400) if it is not a JSON object or list."""
    try:
        data: object = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise BodyError(400, f"request body is not valid UTF-8 (byte {bad.start})") from None
        raise BodyError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict | list):
        raise BodyError(400, "request body must be a JSON object (or a list of them)")
    return data


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as servers do

    return replay


_CODES = {400: "BAD_REQUEST", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}


async def _refuse(send: Send, exc: BodyError) -> None:
    payload = orjson.dumps(
        {"errors": [{"message": exc.message, "extensions": {"code": _CODES[exc.status]}}]}
    )
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
