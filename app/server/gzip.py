"""Response compression: Starlette's `GZipMiddleware`, with a cheaper path for clients that do
not accept gzip.

A client that accepts gzip gets Starlette's own `GZipResponder`, unchanged. For any other
client Starlette builds an `IdentityResponder` per request (normalizing its excluded content
types each time) and parses the response headers twice (`Headers`, `MutableHeaders`) only to
add `Vary: Accept-Encoding`; here the same decisions are made on the raw header list: the
response start is held until the first body, a body of at least `minimum_size` bytes (or a
streamed one) gets `Vary: Accept-Encoding` merged into its Vary header, and a response that is
already encoded, partial (206) or of an excluded content type is passed on untouched, as
Starlette's identity responder does.
"""

from __future__ import annotations

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VARY = b"Accept-Encoding"
_MEDIA_KEPT = 64  # Content-Type values whose verdict a middleware keeps (the app sends few)


class GZipMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = 500,
        compresslevel: int = 9,
        *,
        exclude_content_types: tuple[str, ...] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        self.exclude_content_types = exclude_content_types
        self.excluded = frozenset(
            t.partition(";")[0].strip().lower() for t in exclude_content_types
        )
        self.media: dict[bytes, bool] = {}  # Content-Type value -> excluded, as decided once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"accept-encoding":  # the first one, as Starlette's Headers.get reads it
                if b"gzip" in value:
                    responder = GZipResponder(
                        self.app,
                        self.minimum_size,
                        compresslevel=self.compresslevel,
                        exclude_content_types=self.exclude_content_types,
                    )
                    await responder(scope, receive, send)
                    return
                break
        await self.app(scope, receive, self._identity(send))

    def _identity(self, send: Send) -> Send:
        held: Message | None = None
        passing = False
        minimum = self.minimum_size

        async def identity(message: Message) -> None:
            nonlocal held, passing
            kind = message["type"]
            if passing:
                await send(message)
            elif kind == "http.response.start":
                if self._untouched(message):
                    passing = True
                    await send(message)
                else:
                    held = message
            elif held is not None and kind == "http.response.body":
                start, held = held, None
                passing = True
                if message.get("more_body", False) or len(message.get("body", b"")) >= minimum:
                    start["headers"] = _with_vary(start.get("headers") or [])
                await send(start)
                await send(message)
            elif held is not None and kind == "http.response.pathsend":
                start, held = held, None
                passing = True
                await send(start)
                await send(message)
            else:
                await send(message)

        return identity

    def _untouched(self, start: Message) -> bool:
        """True for a response Starlette's identity responder passes on as it is: already
        encoded, partial, or of an excluded content type."""
        if start["status"] == 206:
            return True
        media = b""
        found = False
        for key, value in start.get("headers") or ():
            if key == b"content-encoding":
                return True
            if key == b"content-type" and not found:
                media, found = value, True
        verdict = self.media.get(media)
        if verdict is None:
            verdict = self._excluded(media)
            if len(self.media) < _MEDIA_KEPT:
                self.media[media] = verdict
        return verdict

    def _excluded(self, media: bytes) -> bool:
        media_type = media.decode("latin-1").partition(";")[0].strip().lower()
        excluded = self.excluded
        if media_type in excluded or media_type.partition("/")[0] + "/*" in excluded:
            return True
        return media_type.startswith("application/grpc+") and "application/grpc" in excluded


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with Accept-Encoding added to Vary, as Starlette's `add_vary_header`: the
    values of every Vary header joined into the first one, the others dropped."""
    values = [v for k, v in headers if k == b"vary"]
    if not values:
        return [*headers, (b"vary", _VARY)]
    joined = b", ".join([*values, _VARY])
    out: list[tuple[bytes, bytes]] = []
    placed = False
    for key, value in headers:
        if key != b"vary":
            out.append((key, value))
        elif not placed:
            out.append((key, joined))
            placed = True
    return out
