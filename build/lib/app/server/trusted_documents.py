"""Trusted documents (persisted queries): a client may send a registered document's SHA-256
instead of its text; in `enforce` mode only registered documents run at all.

Accepted forms: Apollo's `extensions.persistedQuery.sha256Hash` and the GraphQL-over-HTTP
`documentId: "sha256:<hex>"`. Documents are registered with `bookbridge documents register`,
never by clients (a client could otherwise fill the table)."""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.http import GraphQLRequestData

from app.db import trusted_documents
from app.server.refusal import Refusal

Mode = Literal["off", "allow", "enforce"]
_HEX = re.compile(r"^[0-9a-f]{64}$")


class TrustedDocuments:
    def __init__(self, mode: Mode, cache_size: int = 10_000) -> None:
        self.mode = mode
        self.cache_size = cache_size
        self._known: OrderedDict[str, str] = OrderedDict()  # digest -> body (registered only)

    async def resolve(
        self, data: GraphQLRequestData, raw_document_id: object, engine: AsyncEngine
    ) -> GraphQLRequestData:
        """The request with its document text filled in and checked against the mode."""
        if self.mode == "off":
            return data
        digest = _requested_digest(data.extensions, raw_document_id)
        if data.query is not None:
            actual = trusted_documents.digest(data.query)
            if digest is not None and digest != actual:
                raise Refusal(400, "The document's SHA-256 does not match its text", "BAD_REQUEST")
            if self.mode == "enforce" and await self._body(engine, actual) is None:
                raise Refusal(
                    400,
                    "Only registered documents are accepted here (trusted documents)",
                    "PERSISTED_QUERY_NOT_TRUSTED",
                )
            return data
        if digest is None:
            return data  # no document at all: Strawberry answers 400 itself
        body = await self._body(engine, digest)
        if body is None:
            raise Refusal(400, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
        return dataclasses.replace(data, query=body)

    async def _body(self, engine: AsyncEngine, digest: str) -> str | None:
        body = self._known.get(digest)
        if body is not None:
            self._known.move_to_end(digest)
            return body
        async with engine.connect() as conn:
            found = await trusted_documents.bodies_by_ids(conn, [digest])
        body = found.get(digest)
        if body is not None:
            self._known[digest] = body
            if len(self._known) > self.cache_size:
                self._known.popitem(last=False)
        return body


def document_id_of(raw_body: bytes | None, params: dict[str, str | None] | None) -> object:
    """The top-level `documentId` of a request (JSON body or GET parameter), if any."""
    if params is not None:
        return params.get("documentId")
    if not raw_body or b"documentId" not in raw_body:
        return None
    try:
        parsed: Any = orjson.loads(raw_body)
    except orjson.JSONDecodeError:
        return None
    return parsed.get("documentId") if isinstance(parsed, dict) else None


def _requested_digest(extensions: dict[str, Any] | None, document_id: object) -> str | None:
    if document_id is not None:
        if not isinstance(document_id, str) or not document_id.startswith("sha256:"):
            raise Refusal(400, "documentId must be 'sha256:<64 hex digits>'", "BAD_REQUEST")
        return _checked(document_id.removeprefix("sha256:"))
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise Refusal(400, "persistedQuery must be {version: 1, sha256Hash}", "BAD_REQUEST")
    return _checked(persisted.get("sha256Hash"))


def _checked(value: object) -> str:
    if not isinstance(value, str) or not _HEX.match(value):
        raise Refusal(400, "A document hash is 64 lower-case hex digits (SHA-256)", "BAD_REQUEST")
    return value
