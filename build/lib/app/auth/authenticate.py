"""Turns an Authorization header into a viewer: no header is anonymous, a bad token is refused."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.jwt import JwtVerifier
from app.auth.keys import authenticate_key, cached_viewer, looks_like_key
from app.core.viewer import ANONYMOUS, Unauthenticated, Viewer


async def authenticate(header: str | None, engine: AsyncEngine, verifier: JwtVerifier) -> Viewer:
    if header is None or not header.strip():
        return ANONYMOUS
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send 'Authorization: Bearer <API key or JWT>'")
    if looks_like_key(token):
        ttl = verifier.settings.api_key_cache_seconds
        cached = cached_viewer(token) if ttl > 0 else None
        if cached is not None:
            return cached
        async with engine.connect() as conn:
            viewer = await authenticate_key(conn, token, ttl)
        if viewer is None:
            raise Unauthenticated("The API key is unknown, revoked or expired")
        return viewer
    return verifier.verify(token)
