"""API keys: `bbk_<id>_<secret>` printed once; the table keeps the id and a SHA-256 of the secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.scopes import Scope, parse_scopes
from app.core.viewer import Viewer
from app.db.models import ApiKey
from app.db.records import Record

PREFIX = "bbk_"
ID_HEX = 16  # 64 bits of public id; the secret carries 256 bits
CACHE_MAX = 10_000

# key id -> (monotonic time it is good until, secret hash, viewer): live keys only, so a request
# with a known key needs no query. Revoking or rotating in this process drops the entry at once;
# another process (the CLI, another replica) is seen after at most the cache's TTL.
_cache: dict[str, tuple[float, str, Viewer]] = {}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed: everything but the secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    publisher_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from: str | None

    @property
    def live(self) -> bool:
        now = datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


# Scopes by their stored text; a key may hold a scope this version no longer knows.
SCOPE_BY_VALUE: dict[str, Scope] = {scope.value: scope for scope in Scope}


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    if not token.startswith(PREFIX) or len(token) < len(PREFIX) + ID_HEX + 2 or len(token) > 128:
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != ID_HEX or not secret:
        return None
    return key_id, secret


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


async def create_key(
    conn: AsyncConnection,
    name: str,
    scopes: str | Sequence[str],
    publisher_id: str | None = None,
    *,
    rotated_from: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, KeyInfo]:
    """Store a new key and return (the full key, to show once; its listing)."""
    parsed = parse_scopes(scopes)
    if not name.strip():
        raise ValueError("a key needs a name")
    key_id = secrets.token_hex(ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    row = (
        await conn.execute(
            insert(ApiKey)
            .values(
                id=key_id,
                name=name.strip(),
                scopes=sorted(s.value for s in parsed),
                publisher_id=publisher_id,
                secret_hash=hash_secret(secret),
                rotated_from=rotated_from,
                expires_at=expires_at,
            )
            .returning(*_COLUMNS)
        )
    ).one()
    return f"{PREFIX}{key_id}_{secret}", _info(row)


async def list_keys(conn: AsyncConnection, *, include_revoked: bool = False) -> list[KeyInfo]:
    query = select(*_COLUMNS).order_by(ApiKey.name, ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_info(row) for row in (await conn.execute(query)).all()]


def forget_key(key_id: str | None = None) -> None:
    """Drop a key (or, with no id, every key) from this process's cache of live keys."""
    if key_id is None:
        _cache.clear()
    else:
        _cache.pop(key_id, None)


def cached_viewer(token: str) -> Viewer | None:
    """The viewer of a key this process checked less than the cache's TTL ago, else None."""
    parts = split_token(token)
    hit = _cache.get(parts[0]) if parts else None
    if parts is None or hit is None:
        return None
    until, digest, viewer = hit
    if until <= time.monotonic():
        _cache.pop(parts[0], None)
        return None
    return viewer if hmac.compare_digest(digest, hash_secret(parts[1])) else None


async def revoke_key(conn: AsyncConnection, key_id: str) -> bool:
    forget_key(key_id)
    result = await conn.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiKey.id)
    )
    return result.first() is not None


async def rotate_key(
    conn: AsyncConnection, key_id: str, *, grace: timedelta | None = None
) -> tuple[str, KeyInfo]:
    """A new key with the same name, scopes and publisher; the old one stays live (two at once)
    until revoked, or until `grace` has passed when given."""
    old = (
        await conn.execute(
            select(*_COLUMNS).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        )
    ).first()
    if old is None:
        raise LookupError(f"no live key {key_id}")
    forget_key(key_id)
    if grace is not None:
        await conn.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(expires_at=datetime.now(UTC) + grace)
        )
    return await create_key(
        conn, old.name, old.scopes, old.publisher_id, rotated_from=key_id, expires_at=None
    )


async def authenticate_key(
    conn: AsyncConnection, token: str, cache_seconds: float = 0.0
) -> Viewer | None:
    """The viewer of a live key, or None (unknown, wrong secret, revoked, expired); a live key
    is remembered for `cache_seconds` (never past its expiry)."""
    parts = split_token(token)
    if parts is None:
        return None
    key_id, secret = parts
    row = (
        await conn.execute(select(*_COLUMNS, ApiKey.secret_hash).where(ApiKey.id == key_id))
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
        return None
    info = _info(row)
    if not info.live:
        return None
    scopes = frozenset(SCOPE_BY_VALUE[s] for s in info.scopes if s in SCOPE_BY_VALUE)
    viewer = Viewer(
        role="admin" if Scope.ADMIN in scopes else "service",
        publisher_id=info.publisher_id,
        scopes=scopes,
        key_id=info.id,
        key_name=info.name,
    )
    if cache_seconds > 0:
        ttl = cache_seconds
        if info.expires_at is not None:
            ttl = min(ttl, (info.expires_at - datetime.now(UTC)).total_seconds())
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
        _cache[key_id] = (time.monotonic() + ttl, row.secret_hash, viewer)
    return viewer


_COLUMNS = (
    ApiKey.id,
    ApiKey.name,
    ApiKey.scopes,
    ApiKey.publisher_id,
    ApiKey.created_at,
    ApiKey.expires_at,
    ApiKey.revoked_at,
    ApiKey.rotated_from,
)


def _info(row: Record) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        scopes=tuple(row.scopes),
        publisher_id=row.publisher_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        rotated_from=row.rotated_from,
    )
