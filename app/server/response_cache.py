"""Response cache for public catalog queries, invalidated on ingestion across every process."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg  # type: ignore[import-untyped]
import orjson
from graphql import FieldNode, OperationDefinitionNode, OperationType
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ingest import notify
from app.server.body import PARSED_JSON
from graphql_schema.extensions.documents import Document, DocumentCache

if TYPE_CHECKING:
    from app.core.settings import Settings
    from app.runtime.services import Services

log = logging.getLogger(__name__)

# Root fields whose whole sub-graph is public catalog data (no viewer-dependent field below).
PUBLIC_ROOTS = frozenset(
    {"book", "books", "publisher", "publishers", "topic", "topics", "subjects", "grades"}
    | {"categories", "__typename"}
)


@dataclass(slots=True)
class _Entry:
    version: int
    expires: float
    body: bytes


def is_public_document(document: Document, operation_name: str | None) -> bool:
    """True when the operation is a query whose root fields are all public catalog fields
    (remembered in the document's cache entry)."""
    known = document.public.get(operation_name)
    if known is not None:
        return known
    public = False
    if document.node is not None:
        operations = [
            d for d in document.node.definitions if isinstance(d, OperationDefinitionNode)
        ]
        chosen = [
            op
            for op in operations
            if operation_name is None or (op.name is not None and op.name.value == operation_name)
        ]
        if len(chosen) == 1 and chosen[0].operation is OperationType.QUERY:
            roots = chosen[0].selection_set.selections
            public = all(isinstance(s, FieldNode) and s.name.value in PUBLIC_ROOTS for s in roots)
    if len(document.public) < 8:
        document.public[operation_name] = public
    return public


def cache_key(payload: object, documents: DocumentCache) -> str | None:
    """The key of a cacheable request (a JSON object, parsed once by the body middleware, with
    a public catalog query within the document limits), else None."""
    if not isinstance(payload, dict):
        return None
    query, name = payload.get("query"), payload.get("operationName")
    variables = payload.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return None
    if name is not None and not isinstance(name, str):
        return None
    if payload.get("extensions"):
        return None
    document = documents.get(query)  # refuses over-long or over-token documents unparsed
    if document.error is not None or not is_public_document(document, name):
        return None
    try:
        canonical = orjson.dumps([query, name, variables], option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nothing the body limits let through; not cached then
        return None
    return hashlib.blake2b(canonical, digest_size=20).hexdigest()


class ResponseCache:
    """Wraps the GraphQL endpoint: anonymous public catalog queries are answered from memory.

    Entries carry the catalog version seen when their request started; the ingestion service
    (app/ingest/notify.py), after a batch that changed the catalog, bumps it here at once and,
    through PostgreSQL NOTIFY, in every other worker and replica. Until a process listens, it
    serves nothing from its cache. Responses with errors are never stored.
    """

    def __init__(
        self,
        app: ASGIApp,
        services_of: Callable[[], Services],
        settings: Settings,
        documents: DocumentCache,
    ) -> None:
        self.app = app
        self.documents = documents
        self._services_of = services_of
        self.config = settings.response_cache
        on = self.config.enabled
        self.enabled = (settings.bookbridge_env != "test") if on is None else on
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, tuple[int, asyncio.Future[bytes | None]]] = {}
        self.version = 0
        self._listener: asyncpg.Connection | None = None
        self._listen_lock = asyncio.Lock()
        self._retry_at = 0.0
        self.hits = self.misses = 0
        notify.watch_catalog(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self.enabled:
            await self.app(scope, receive, send)
            return
        if any(k in (b"authorization", b"cookie") for k, _ in scope["headers"]):
            await self.app(scope, receive, send)  # viewer-dependent: never shared
            return
        parsed = scope.get(PARSED_JSON)  # the body middleware's (body, JSON), never parsed again
        if parsed is None:
            await self.app(scope, receive, send)
            return
        _, payload = parsed
        key = cache_key(payload, self.documents)
        if key is None or not await self._listening():
            await self.app(scope, receive, send)
            return
        if (cached := self._get(key)) is not None:
            self.hits += 1
            await _send_json(send, cached, b"hit")
            return
        if (pending := self._inflight.get(key)) is not None:  # concurrent misses compute once
            started, future = pending
            shared = await asyncio.shield(future)
            if shared is not None and started == self.version:
                await _send_json(send, shared, b"hit")
                return
        self.misses += 1
        await self._compute(key, scope, receive, send)

    async def _compute(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        version = self.version
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (version, future)
        status, parts = 0, []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-bookbridge-cache", b"miss")]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        result: bytes | None = None
        try:
            await self.app(scope, receive, capture)
            body = b"".join(parts)
            if status == 200 and b'"errors":' not in body:
                # a copy: the encoder's buffer may be far larger than its length (4 KiB for
                # a 30-byte answer), and the byte bound counts lengths
                result = body = bytes(memoryview(body))
                if version == self.version:
                    self._put(key, _Entry(version, time.monotonic() + self._ttl(), body))
        finally:
            self._inflight.pop(key, None)
            future.set_result(result)

    def _ttl(self) -> float:
        return self.config.ttl_seconds

    def _get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.version != self.version or entry.expires < time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.body

    def _put(self, key: str, entry: _Entry) -> None:
        settings = self.config
        if len(entry.body) > settings.max_bytes // 8:
            return  # one huge response must not evict everything else
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._entries and (
            len(self._entries) > settings.entries or self._bytes > settings.max_bytes
        ):
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry.body)

    def catalog_changed(self) -> None:
        self.bump()

    def bump(self) -> None:
        """Forget every cached response of this process (the catalog changed)."""
        self.version += 1
        self._entries.clear()
        self._bytes = 0

    async def _listening(self) -> bool:
        """LISTEN on the invalidation channel (once per process); False while that fails."""
        if self._listener is not None and not self._listener.is_closed():
            return True  # the hot path: one attribute test and one method call
        if time.monotonic() < self._retry_at:
            return False
        async with self._listen_lock:
            if self._listener is not None and not self._listener.is_closed():
                return True
            try:
                url = self._services_of().settings.database_url
                conn = await asyncpg.connect(_plain(url), timeout=5)
                await conn.add_listener(notify.CATALOG_CHANNEL, self._notified)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("response cache off for 5 s: cannot LISTEN (%s)", exc)
                self._retry_at = time.monotonic() + 5
                return False
            conn.add_termination_listener(self._lost)
            self.bump()  # anything cached before we listened may have missed a notification
            self._listener = conn
            return True

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        # this process's own batch bumped the version at its commit; its notification, which
        # arrives a little later, would empty again a cache refilled since from committed data
        if not notify.sent_here(payload):
            self.bump()

    def _lost(self, *_: object) -> None:
        self._listener = None
        self.bump()

    async def close(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()


def _plain(url: str | None) -> str:
    if not url:
        raise OSError("no database URL")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _send_json(send: Send, body: bytes, state: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-bookbridge-cache", state),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
