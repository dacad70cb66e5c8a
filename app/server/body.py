"""Request bodies: size limits, streamed gzip decoding and JSON checks before the app sees them."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# scope key: (body, its parsed JSON) for the app behind, which then need not parse it again
PARSED_JSON = "bookbridge.parsed_json"
_STEP = 1 << 20  # inflate at most 1 MiB per call, so a bomb is caught after one step over the limit
_IDENTITY = {"", "identity"}
_GZIP = {"gzip", "x-gzip"}
_RATIO_FLOOR = 1 << 20  # bodies inflating to less than this are never refused for their ratio
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")  # one kind of pair: one level peeled per pass


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """How deep and how large a JSON body may be (SecuritySettings.max_json_*)."""

    max_depth: int = 64
    max_elements: int = 1_000_000


class BodyError(Exception):
    """A request body refused before it reaches the app: HTTP status and a client-safe message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GzipStream:
    """Incremental gzip decoder (multi-member aware) that refuses output beyond `limit` bytes,
    or beyond `max_ratio` times the compressed bytes fed so far (once past 1 MiB)."""

    def __init__(self, limit: int, max_ratio: int | None = None) -> None:
        self.limit = limit
        self.max_ratio = max_ratio
        self.size = 0
        self.fed = 0
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterable[bytes]:
        self.fed += len(data)
        while data:
            try:
                out = self._inflater.decompress(data, min(_STEP, self.limit - self.size + 1))
            except zlib.error as exc:
                raise BodyError(400, f"request body is not valid gzip: {exc}") from None
            self.size += len(out)
            if self.size > self.limit:
                raise BodyError(413, f"decompressed request body exceeds {self.limit} bytes")
            ratio = self.max_ratio
            if ratio is not None and self.size > max(_RATIO_FLOOR, ratio * self.fed):
                raise BodyError(413, f"gzip request body inflates more than {ratio} times")
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
        max_inflate_ratio: int | None = None,
        json_limits: JsonLimits | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.json_paths = json_paths
        self.max_inflate_ratio = max_inflate_ratio
        self.json_limits = json_limits or JsonLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # the first of each header, as Starlette's Headers.get reads them; one pass, and the
        # others kept for the app behind
        encoding = length = media = None
        kept: list[tuple[bytes, bytes]] = []
        for key, value in scope["headers"]:
            if key == b"content-encoding":
                if encoding is None:
                    encoding = value
                continue
            if key == b"content-length":
                if length is None:
                    length = value
                continue
            if key == b"content-type" and media is None:
                media = value
            kept.append((key, value))
        parsed: object = None
        try:
            body = await self._read(encoding, length, receive)
            if scope["path"] in self.json_paths and _is_json(media):
                parsed = _check_json(body, self.json_limits)
        except BodyError as exc:
            await _refuse(send, exc)
            return
        scope = dict(scope)
        if parsed is not None:
            scope[PARSED_JSON] = (body, parsed)
        kept.append((b"content-length", str(len(body)).encode()))
        scope["headers"] = kept
        await self.app(scope, _replay(body, receive), send)

    async def _read(
        self, encoding_header: bytes | None, length_header: bytes | None, receive: Receive
    ) -> bytes:
        encoding = _latin(encoding_header).strip().lower()
        if encoding not in _IDENTITY and encoding not in _GZIP:
            raise BodyError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or identity")
        length = None if length_header is None else _latin(length_header)
        if length is not None:
            if not length.isdigit():
                raise BodyError(400, "Content-Length is not a number")
            if int(length) > self.max_body_bytes:
                raise BodyError(413, f"request body exceeds {self.max_body_bytes} bytes")
        gzip = (
            GzipStream(self.max_decompressed_bytes, self.max_inflate_ratio)
            if encoding in _GZIP
            else None
        )
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


def _latin(value: bytes | None) -> str:
    return "" if value is None else value.decode("latin-1")


def _is_json(content_type: bytes | None) -> bool:
    return "json" in _latin(content_type).split(";", 1)[0].lower()


def check_json_shape(body: bytes, limits: JsonLimits) -> None:
    """Refuse JSON nested deeper than, or with more values than, `limits` before parsing it.

    C-speed passes over the bytes: values are bounded by the count of commas and openers (an
    exact count, outside strings, only when that bound is over the limit); depth by peeling
    innermost bracket pairs off the brackets outside strings, at most `max_depth` times."""
    openers = body.count(b"[") + body.count(b"{")
    values = openers + body.count(b",") + 1
    if values <= limits.max_elements and openers <= limits.max_depth:
        return
    structure = _outside_strings(body)
    if values > limits.max_elements:
        values = structure.count(b"[") + structure.count(b"{") + structure.count(b",") + 1
        if values > limits.max_elements:
            raise BodyError(413, f"JSON body has more than {limits.max_elements} values")
    brackets = structure.translate(_SQUARE, _NOT_BRACKET)
    for _ in range(limits.max_depth):
        if not brackets:
            return
        brackets = brackets.replace(b"[]", b"")
    if brackets:
        raise BodyError(400, f"JSON body is nested deeper than {limits.max_depth} levels")


def _outside_strings(body: bytes) -> bytes:
    """The bytes of `body` outside JSON strings (escapes dropped first, then every other
    piece between quotes)."""
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)
    return b"".join(body.split(b'"')[::2])


def _check_json(body: bytes, limits: JsonLimits) -> object:
    """The parsed body; BodyError (400) if it is not a JSON object or list, or over `limits`."""
    check_json_shape(body, limits)
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
