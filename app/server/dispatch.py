"""The app's Starlette, with one lane in front: POST /graphql straight to its endpoint.

Every request of a Starlette app goes ServerErrorMiddleware -> the user middleware ->
ExceptionMiddleware (a `Request` object and a send wrapper per request) -> the router (a
regular expression per route until one matches) -> the route (its method check) -> the
endpoint. The GraphQL endpoint answers every refusal itself (`GraphQLApp`: a coded JSON error,
never Starlette's plain-text `HTTPException` response) and takes both its methods, so for a POST
to exactly `/graphql` (no `root_path`) ExceptionMiddleware, the router and the route decide
nothing: this lane runs the same middleware, built from the same list (the user middleware
inside ServerErrorMiddleware, as `build_middleware_stack` orders them), around the endpoint,
and sets the scope keys the router would (`app`, `router`, `route`, `endpoint`,
`path_params`). Anything else (GET, other paths, a mounted app, lifespan) is Starlette's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send


class Service(Starlette):
    """A Starlette app whose `lane_path` route, asked with POST, skips the router."""

    def __init__(
        self,
        *,
        routes: Sequence[BaseRoute],
        middleware: Sequence[Middleware],
        lane_path: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(routes=routes, middleware=middleware, **kwargs)
        found = [
            r
            for r in self.router.routes
            if isinstance(r, Route) and r.path == lane_path and r.methods and "POST" in r.methods
        ]
        if len(found) != 1:
            raise ValueError(f"one POST route at {lane_path!r} expected, found {len(found)}")
        self.lane_route = found[0]
        self.lane_path = lane_path
        self.lane: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, and the lane's: the same middleware around the route's app."""
        stack = super().build_middleware_stack()
        # with Starlette's own body limit (not used here) every request takes the whole stack
        self.lane = stack if self.max_body_size is not None else self.build_lane()
        return stack

    def build_lane(self) -> ASGIApp:
        error_handler = None
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
        middleware = [Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug)]
        middleware += self.user_middleware
        app: ASGIApp = self.lane_route.app
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.lane_path
            and not scope.get("root_path")
        ):
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            route = self.lane_route
            scope["app"] = self
            scope["router"] = self.router
            scope["route"] = route
            scope["endpoint"] = route.endpoint
            scope["path_params"] = {}
            assert self.lane is not None
            await self.lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
