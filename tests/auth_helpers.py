"""Tokens for tests: JWTs signed with the test secret, and API keys made through the real code."""

from __future__ import annotations

import time
from typing import Any

import jwt

from app.auth import keys
from app.runtime.services import Services

SECRET = "test-secret-long-enough-for-any-hmac-algorithm-0123456789abcdef0123456789"
AUDIENCE = "bookbridge"
ISSUER = "bookbridge-auth"


def token(sub: str, role: str = "student", *, lifetime: int = 600, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": sub, "role": role, "aud": AUDIENCE, "iss": ISSUER, "iat": now}
    payload["exp"] = now + lifetime
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET, "HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


ADMIN = token("admin-1", "admin", lifetime=6 * 3600)


async def api_key(services: Services, scopes: str, publisher_id: str | None = None) -> str:
    async with services.engine.begin() as conn:
        secret, _ = await keys.create_key(conn, f"test {scopes}", scopes, publisher_id)
    return secret
