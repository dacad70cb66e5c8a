"""API keys (created, listed, rotated with two live, revoked) and JWT checks, over HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest

from app.auth import keys
from app.auth.authenticate import authenticate
from app.auth.jwt import JwtVerifier
from app.core.scopes import parse_scopes
from app.core.settings import SecuritySettings
from app.core.viewer import Unauthenticated
from app.runtime.services import Services
from tests import auth_helpers
from tests.auth_helpers import bearer, token

ME = "{ studySets(first: 1) { edges { node { id } } } }"
WRITE = 'mutation { upsertSubjects(input: {records: [{id: "s9", name: "Art"}]}) { inserted } }'


async def post(http: httpx.AsyncClient, query: str, auth: str | None) -> httpx.Response:
    headers = {"Authorization": auth} if auth is not None else {}
    return await http.post("/graphql", json={"query": query}, headers=headers)


def code(response: httpx.Response) -> str:
    body = response.json()
    return str(body["errors"][0]["extensions"]["code"])


async def test_key_is_shown_once_and_only_its_hash_is_stored(services: Services) -> None:
    async with services.engine.begin() as conn:
        secret, info = await keys.create_key(conn, "sync", "catalog:write", "p1")
        listed = await keys.list_keys(conn)
        stored = (await conn.exec_driver_sql("SELECT api_keys::text FROM api_keys")).scalars()
        rows = list(stored)
    assert secret.startswith(f"bbk_{info.id}_") and len(secret) > 50
    assert [k.id for k in listed] == [info.id] and listed[0].publisher_id == "p1"
    secret_part = secret.split("_", 2)[2]
    assert all(secret_part not in row for row in rows)
    assert all(keys.hash_secret(secret_part) in row for row in rows)


async def test_key_writes_with_its_scope_only(services: Services, http: httpx.AsyncClient) -> None:
    taxonomy = await auth_helpers.api_key(services, "taxonomy:write")
    catalog = await auth_helpers.api_key(services, "catalog:write")
    ok = await post(http, WRITE, f"Bearer {taxonomy}")
    assert ok.status_code == 200 and ok.json()["data"]["upsertSubjects"]["inserted"] == 1
    refused = await post(http, WRITE, f"Bearer {catalog}")
    assert code(refused) == "FORBIDDEN" and refused.json()["data"] is None
    anonymous = await post(http, WRITE, None)
    assert code(anonymous) == "UNAUTHENTICATED"


async def test_rotation_keeps_two_keys_live_until_revoked(
    services: Services, http: httpx.AsyncClient
) -> None:
    async with services.engine.begin() as conn:
        old, old_info = await keys.create_key(conn, "sync", "taxonomy:write")
        new, new_info = await keys.rotate_key(conn, old_info.id)
    assert new_info.rotated_from == old_info.id and new_info.scopes == old_info.scopes
    for secret in (old, new):
        assert (await post(http, WRITE, f"Bearer {secret}")).status_code == 200
    async with services.engine.begin() as conn:
        assert await keys.revoke_key(conn, old_info.id)
        assert not await keys.revoke_key(conn, old_info.id)
    revoked = await post(http, WRITE, f"Bearer {old}")
    assert revoked.status_code == 401 and code(revoked) == "UNAUTHENTICATED"
    assert revoked.headers["www-authenticate"] == "Bearer"
    assert (await post(http, WRITE, f"Bearer {new}")).status_code == 200


async def test_rotation_with_grace_expires_the_old_key(
    services: Services, http: httpx.AsyncClient
) -> None:
    async with services.engine.begin() as conn:
        old, info = await keys.create_key(conn, "sync", "taxonomy:write")
        await keys.rotate_key(conn, info.id, grace=timedelta(seconds=-1))
    assert (await post(http, WRITE, f"Bearer {old}")).status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer bbk_0000000000000000_nope",
        "Bearer bbk_short",
        "Bearer not.a.jwt",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer " + "x" * 5000,
    ],
)
async def test_bad_credentials_are_401_not_500(http: httpx.AsyncClient, header: str) -> None:
    response = await post(http, ME, header)
    assert response.status_code == 401
    assert code(response) == "UNAUTHENTICATED"


async def test_a_wrong_secret_for_a_real_key_id_is_refused(
    services: Services, http: httpx.AsyncClient
) -> None:
    secret = await auth_helpers.api_key(services, "admin")
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert (await post(http, ME, f"Bearer {forged}")).status_code == 401


def _jwt_cases() -> list[tuple[str, str]]:
    s = auth_helpers.SECRET
    base = {"sub": "u1", "role": "student", "aud": "bookbridge", "iss": "bookbridge-auth"}
    return [
        ("expired", token("u1", lifetime=-120)),
        ("wrong audience", token("u1", aud="someone-else")),
        ("wrong issuer", token("u1", iss="evil")),
        ("wrong secret", jwt.encode({**base, "iat": 1, "exp": 9999999999}, "x" * 40, "HS256")),
        ("alg none", jwt.encode({**base, "iat": 1, "exp": 9999999999}, None, "none")),
        ("HS512 not pinned", jwt.encode({**base, "iat": 1, "exp": 2**31}, s, "HS512")),
        ("no exp", jwt.encode({**base, "iat": 1}, s, "HS256")),
        ("no sub", token(None)),  # type: ignore[arg-type]
        ("unknown role", token("u1", "superuser")),
        ("publisher without id", token("u1", "publisher")),
        ("lives too long", token("u1", lifetime=30 * 24 * 3600)),
    ]


@pytest.mark.parametrize(("case", "bad"), _jwt_cases(), ids=[c for c, _ in _jwt_cases()])
async def test_bad_jwts_are_refused(http: httpx.AsyncClient, case: str, bad: str) -> None:
    response = await post(http, ME, f"Bearer {bad}")
    assert response.status_code == 401, (case, response.text)
    assert code(response) == "UNAUTHENTICATED"


async def test_a_good_student_jwt_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": ME}, headers=bearer(token("u1")))
    assert response.status_code == 200 and "errors" not in response.json()


def test_settings_pin_algorithms() -> None:
    with pytest.raises(ValueError, match="none"):
        SecuritySettings(jwt_algorithms="none")
    with pytest.raises(ValueError, match="mix"):
        SecuritySettings(jwt_algorithms="HS256,RS256")
    assert SecuritySettings(jwt_algorithms="RS256, ES256").algorithms == ["RS256", "ES256"]


def test_scopes_parse_and_refuse_unknown_names() -> None:
    assert {s.value for s in parse_scopes("catalog:write, events:write")} == {
        "catalog:write",
        "events:write",
    }
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes("catalog:write,root")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(" , ")


async def test_key_cache_revocation(services: Services) -> None:
    """Live keys are remembered per process: revoking here takes effect at once; a revocation
    made elsewhere (plain SQL here) is seen within api_key_cache_seconds, at once with 0."""
    cached = JwtVerifier(SecuritySettings(jwt_secret=auth_helpers.SECRET))
    uncached = JwtVerifier(
        SecuritySettings(jwt_secret=auth_helpers.SECRET, api_key_cache_seconds=0)
    )
    async with services.engine.begin() as conn:
        secret, info = await keys.create_key(conn, "sync", "taxonomy:write")
    header = f"Bearer {secret}"
    assert (await authenticate(header, services.read_engine, cached)).key_id == info.id
    assert keys.cached_viewer(secret) is not None
    assert keys.cached_viewer(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    async with services.engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1", (info.id,)
        )
    with pytest.raises(Unauthenticated):
        await authenticate(header, services.read_engine, uncached)
    # another process's revocation: this process still knows the key until its entry expires
    assert (await authenticate(header, services.read_engine, cached)).key_id == info.id
    keys.forget_key(info.id)
    with pytest.raises(Unauthenticated):
        await authenticate(header, services.read_engine, cached)

    async with services.engine.begin() as conn:
        secret, info = await keys.create_key(conn, "sync", "taxonomy:write")
    header = f"Bearer {secret}"
    assert (await authenticate(header, services.read_engine, cached)).key_id == info.id
    async with services.engine.begin() as conn:
        assert await keys.revoke_key(conn, info.id)  # in this process: dropped from the cache
    with pytest.raises(Unauthenticated):
        await authenticate(header, services.read_engine, cached)
