"""The GraphQL HTTP endpoint: Strawberry's ASGI app with our context and a fast JSON encoder."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from app.auth.authenticate import authenticate
from app.auth.jwt import JwtVerifier
from app.core.viewer import Unauthenticated
from app.db.errors import is_transient
from app.runtime.services import Services
from app.server.body import PARSED_JSON, BodyError, JsonLimits, check_json_shape
from app.server.refusal import CODES, Refusal, error_body
from app.server.trusted_documents import (
    TrustedDocuments,
    document_id_of,
)
from graphql_schema.execution.compiler.fast import FastReads
from graphql_schema.types.context import Context

log = logging.getLogger(__name__)
_parsed: ContextVar[tuple[bytes, object] | None] = ContextVar("bookbridge_parsed", default=None)


class GraphQLApp(GraphQL[Context, None]):
    def __init__(
        self,
        services_of: Any,
        *,
        graphiql_page: str | None = None,
        graphiql_csp: str = "",
        json_limits: JsonLimits | None = None,
        retry_after: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(graphql_ide="graphiql" if graphiql_page else None, **kwargs)
        self._services_of = services_of
        self._graphiql_page = graphiql_page
        self._graphiql_headers = {"content-security-policy": graphiql_csp} if graphiql_csp else {}
        self._verifier: JwtVerifier | None = None
        self._documents: TrustedDocuments | None = None
        self.json_limits = json_limits or JsonLimits()
        self.retry_after = retry_after
        self._fast: FastReads | None = getattr(self.schema, "fast", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        # the body middleware parsed the body already (to refuse bad JSON with a 400)
        parsed = scope.get(PARSED_JSON)
        token = _parsed.set(parsed)
        try:
            response = None
            if self._fast is not None and parsed is not None and scope["method"] == "POST":
                fast = await self._try_fast(self._fast, parsed[1], scope, receive)
                if isinstance(fast, bytes):  # the data, sent as Starlette's Response sends it
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-length", str(len(fast)).encode()),
                                (b"content-type", b"application/json"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": fast})
                    return None
                response = fast
            if response is None:
                response = await self._run(Request(scope=scope, receive=receive))
        except HTTPException as exc:  # every refusal is a JSON GraphQL error with a code
            code = exc.code if isinstance(exc, Refusal) else CODES.get(exc.status_code)
            headers = exc.headers if isinstance(exc, Refusal) else {}
            if exc.status_code == 401:
                headers = {**headers, "WWW-Authenticate": "Bearer"}
            response = Response(
                orjson.dumps(error_body(exc.reason, code or "BAD_REQUEST")),
                status_code=exc.status_code,
                media_type="application/json",
                headers=headers,
            )
        finally:
            _parsed.reset(token)
        await response(scope, receive, send)
        return None

    async def _try_fast(
        self, fast: FastReads, payload: object, scope: Scope, receive: Receive
    ) -> bytes | Response | None:
        """A compiled read of a document seen before, without Strawberry's pipeline
        (graphql_schema/execution/compiler/fast.py): its JSON body, or the pipeline's response
        when the statement fell back; None: the request is the pipeline's."""
        ticket = fast.prepare(payload)
        if ticket is None:
            return None
        authorization = content_type = accept = None
        for key, value in scope["headers"]:
            # the first of each, as Starlette's Headers.get reads them
            if key == b"authorization" and authorization is None:
                authorization = value
            elif key == b"content-type" and content_type is None:
                content_type = value
            elif key == b"accept" and accept is None:
                accept = value
        # what Strawberry's parse_http_body takes as JSON; streamed answers are its own
        if content_type is None or b"application/json" not in content_type.split(b";", 1)[0]:
            return None
        if accept is not None and (b"multipart/mixed" in accept or b"event-stream" in accept):
            return None
        services: Services = self._services_of()
        if services.settings.security.trusted_documents == "enforce":
            return None  # (off, allow: a document's text with no hash runs as it is)
        header = authorization.decode("latin-1") if authorization is not None else None
        try:
            viewer = await authenticate(header, services.read_engine, self._jwt(services))
        except Exception:  # refused or failed: the pipeline authenticates and answers as it does
            return None
        client = scope.get("client")
        return await fast.answer(
            ticket,
            viewer,
            client[0] if client else None,
            services.redis,
            services.read_engine,
            lambda: self._run(Request(scope=scope, receive=receive)),
        )

    def _jwt(self, services: Services) -> JwtVerifier:
        if self._verifier is None or self._verifier.settings is not services.settings.security:
            self._verifier = JwtVerifier(services.settings.security)
        return self._verifier

    async def _run(self, request: Request) -> Response:
        """Strawberry's run; a database that cannot be reached before execution (the API key
        check, a trusted document lookup) is a 503 with Retry-After, as it is during it."""
        try:
            return await self.run(request)
        except HTTPException:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("database unavailable before execution: %s", exc)
            raise Refusal(
                503,
                "The database is unavailable just now; retry shortly",
                "SERVICE_UNAVAILABLE",
                {"Retry-After": str(self.retry_after)},
            ) from None

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services: Services = self._services_of()
        assert isinstance(request, Request) and isinstance(response, Response)
        try:
            viewer = await authenticate(
                request.headers.get("authorization"), services.read_engine, self._jwt(services)
            )
        except Unauthenticated as exc:
            raise Refusal(401, str(exc)) from None
        return Context.create(services, request, response, viewer)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        params = dict(request.query_params) if request.method == "GET" else None
        raw = None if params is not None else await request.get_body()
        services: Services = self._services_of()
        mode = services.settings.security.trusted_documents
        if isinstance(data, list) or mode == "off":
            return data
        if self._documents is None or self._documents.mode != mode:
            self._documents = TrustedDocuments(mode)
        return await self._documents.resolve(
            data, document_id_of(raw, params), services.read_engine
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # our page (app/server/graphiql.py): assets served by bookbridge, not Strawberry's CDN page
        return HTMLResponse(self._graphiql_page, headers=self._graphiql_headers)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        done = _parsed.get()
        if done is not None and (data is done[0] or data == done[0]):
            return done[1]
        # GET `variables` (POST bodies were checked by the body middleware)
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        try:
            check_json_shape(raw, self.json_limits)
        except BodyError as exc:
            raise Refusal(exc.status, exc.message) from None
        return orjson.loads(data)
