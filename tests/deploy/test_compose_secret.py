"""compose.yaml passes BOOKBRIDGE_JWT_SECRET as `${BOOKBRIDGE_JWT_SECRET:-}`: unset, the service
gets an empty secret, starts, serves anonymous queries, and tells a caller presenting a JWT that
JWT authentication is not configured (never accepts a token signed with an empty key)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers


@pytest.fixture
async def no_secret(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    from app.core.settings import SecuritySettings

    monkeypatch.setenv("BOOKBRIDGE_JWT_SECRET", "")  # what compose passes when it is unset
    security = SecuritySettings()
    assert security.jwt_secret == ""
    settings = services.settings.model_copy(update={"security": security})
    shared = Services(settings=settings, engine=services.engine, read_engine=services.read_engine)
    transport = httpx.ASGITransport(app=create_app(services=shared))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_an_unset_secret_refuses_jwts_clearly(no_secret: httpx.AsyncClient) -> None:
    query = {"query": "{ __typename }"}
    assert (await no_secret.post("/graphql", json=query)).json() == {
        "data": {"__typename": "Query"}
    }
    headers = auth_helpers.bearer(auth_helpers.ADMIN)
    response = await no_secret.post("/graphql", json=query, headers=headers)
    assert response.status_code == 401
    assert "JWT authentication is not configured" in response.text
