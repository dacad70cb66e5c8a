"""The GraphQL HTTP endpoint: Strawberry's ASGI app with our context and a fast JSON encoder."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from bookbridge.app.services import Services
from bookbridge.graphql_schema.context import Context


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, services_of: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._services_of = services_of

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services: Services = self._services_of()
        assert isinstance(request, Request) and isinstance(response, Response)
        return Context.create(services, request, response)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)
