"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from app.core.settings import Settings
from app.core.viewer import ANONYMOUS, Viewer
from app.runtime.services import Services
from loaders import Loaders


@dataclass(slots=True)
class Context:
    request: Request | None
    response: Response | None
    services: Services
    loaders: Loaders
    viewer: Viewer = ANONYMOUS

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @classmethod
    def create(
        cls,
        services: Services,
        request: Request | None = None,
        response: Response | None = None,
        viewer: Viewer = ANONYMOUS,
    ) -> Context:
        return cls(request, response, services, Loaders.create(services, viewer), viewer)


Info: TypeAlias = strawberry.Info[Context, None]
