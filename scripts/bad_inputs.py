"""Send bad inputs to the app in-process (production settings) and print the markdown table of
docs/security.md: `python scripts/bad_inputs.py postgresql://.../scratch_db` (it migrates it)."""

import asyncio
import gzip
import json
import sys
import time

import httpx
import jwt
from sqlalchemy import text

from app.auth import keys
from app.core.settings import SecuritySettings, Settings, normalize_database_url
from app.db.migrate import upgrade
from app.runtime.services import Services
from app.server.factory import create_app

URL = normalize_database_url(
    sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/bookbridge_probe"
)
SECRET = "probe-secret-0123456789abcdef0123456789abcdef0123456789abcdef"


def tok(**kw):
    now = int(time.time())
    p = {
        "sub": "u1",
        "role": "student",
        "aud": "bookbridge",
        "iss": "bookbridge-auth",
        "iat": now,
        "exp": now + 600,
    }
    p.update(kw)
    p = {k: v for k, v in p.items() if v is not None}
    return jwt.encode(p, SECRET, "HS256")


async def main():  # noqa: PLR0915  (one probe per line reads best)

    s = Settings(
        bookbridge_env="production", database_url=URL, security=SecuritySettings(jwt_secret=SECRET)
    )
    services = Services.create(s)
    async with services.engine.begin() as conn:
        pubkey, _ = await keys.create_key(conn, "probe", "catalog:write,analytics:read", "p1")
    app = create_app(services=services)
    rows = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:

        async def probe(label, method="POST", **kw):
            r = await c.request(method, "/graphql", **kw)
            try:
                body = r.json()
                err = (body.get("errors") or [{}])[0] if isinstance(body, dict) else {}
                code = (err.get("extensions") or {}).get("code", "-")
                msg = err.get("message", "data: " + json.dumps(body.get("data"))[:60])
            except Exception:
                code, msg = "-", r.text[:60]
            rows.append((label, r.status_code, code, msg.replace("|", "/")[:90]))

        J = {"content-type": "application/json"}
        await probe("malformed JSON", content=b'{"query": "{ books', headers=J)
        await probe("JSON that is not an object", content=b"42", headers=J)
        await probe("invalid UTF-8", content=b'{"query": "\xff"}', headers=J)
        await probe(
            "truncated gzip body",
            content=gzip.compress(b'{"query":"{ subjects { id } }"}')[:10],
            headers={**J, "content-encoding": "gzip"},
        )
        await probe(
            "unknown Content-Encoding", content=b"{}", headers={**J, "content-encoding": "br"}
        )
        await probe(
            "gzip bomb (1 GiB of zeros)",
            content=gzip.compress(b"0" * (80 << 20)),
            headers={**J, "content-encoding": "gzip"},
        )
        await probe(
            "form-encoded body",
            content=b"query=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        await probe("no query at all", json={})
        await probe("query is a number", json={"query": 5})
        await probe("variables is a list", json={"query": "{ subjects { id } }", "variables": []})
        await probe("syntax error", json={"query": "{ books { "})
        await probe(
            "unknown field (no suggestions)", json={"query": "{ boks { edges { cursor } } }"}
        )
        await probe(
            "introspection in production", json={"query": "{ __schema { types { name } } }"}
        )
        await probe(
            "wrong variable type",
            json={
                "query": "query($n: Int) { books(first: $n) { edges { cursor } } }",
                "variables": {"n": "ten"},
            },
        )
        await probe(
            "first: 101 (over the page maximum)",
            json={"query": "{ books(first: 101) { edges { cursor } } }"},
        )
        await probe("first: -1", json={"query": "{ books(first: -1) { edges { cursor } } }"})
        await probe(
            "first: 2^31 (Int overflow)",
            json={"query": "{ books(first: 2147483648) { edges { cursor } } }"},
        )
        await probe(
            "garbage cursor", json={"query": '{ books(after: "!!!") { edges { cursor } } }'}
        )
        await probe(
            "well-formed cursor of the wrong shape",
            json={"query": '{ books(after: "WzEsMiwzXQ") { edges { cursor } } }'},
        )
        await probe(
            "depth 14",
            json={
                "query": '{ book(id: "b") { publisher { books { edges { node { publisher { books { edges { node { publisher { books { edges { node { id } } } } } } } } } } } } } }'
            },
        )
        await probe(
            "40 aliases",
            json={"query": "{ " + " ".join(f"a{i}: subjects {{ id }}" for i in range(40)) + " }"},
        )
        await probe("3,000 tokens", json={"query": "{ subjects { " + "id " * 3000 + "} }"})
        await probe(
            "cost 100 x 10 x 100 nested lists",
            json={
                "query": "{ books(first: 100) { edges { node { topics { topic { books(first: 100) { edges { node { id } } } } } } } } }"
            },
        )
        await probe(
            "fragment cycle",
            json={
                "query": "query { subjects { ...A } } fragment A on Subject { ...B } fragment B on Subject { ...A }"
            },
        )
        await probe(
            "two operations, no operationName",
            json={"query": "query A { subjects { id } } query B { grades { id } }"},
        )
        await probe(
            "batched operations (JSON array)",
            json=[{"query": "{ subjects { id } }"}, {"query": "{ grades { id } }"}],
        )
        await probe(
            "mutation over GET",
            method="GET",
            params={"query": "mutation { upsertSubjects(input: {records: []}) { inserted } }"},
            headers={"accept": "application/json"},
        )
        await probe("PUT /graphql", method="PUT", json={"query": "{ subjects { id } }"})
        await probe(
            "write without a token",
            json={
                "query": 'mutation { upsertSubjects(input: {records: [{id: "s", name: "n"}]}) { inserted } }'
            },
        )
        await probe(
            "write with the wrong scope (catalog key -> subjects)",
            json={
                "query": 'mutation { upsertSubjects(input: {records: [{id: "s", name: "n"}]}) { inserted } }'
            },
            headers={"authorization": f"Bearer {pubkey}"},
        )
        await probe(
            "batch of 10,001 records",
            json={
                "query": "mutation($r: [PublisherInput!]!) { upsertPublishers(input: {records: $r}) { inserted } }",
                "variables": {"r": [{"id": f"p{i}", "name": "n"} for i in range(10001)]},
            },
            headers={"authorization": f"Bearer {pubkey}"},
        )
        await probe(
            "Authorization: Basic",
            json={"query": "{ subjects { id } }"},
            headers={"authorization": "Basic dTpw"},
        )
        await probe(
            "unknown API key",
            json={"query": "{ subjects { id } }"},
            headers={"authorization": "Bearer bbk_0000000000000000_x"},
        )
        await probe(
            "expired JWT",
            json={"query": "{ subjects { id } }"},
            headers={"authorization": "Bearer " + tok(exp=int(time.time()) - 100)},
        )
        await probe(
            "JWT for another audience",
            json={"query": "{ subjects { id } }"},
            headers={"authorization": "Bearer " + tok(aud="other")},
        )
        await probe(
            "JWT with alg none",
            json={"query": "{ subjects { id } }"},
            headers={
                "authorization": "Bearer "
                + jwt.encode(
                    {
                        "sub": "u1",
                        "role": "admin",
                        "aud": "bookbridge",
                        "iss": "bookbridge-auth",
                        "iat": 1,
                        "exp": 2**31,
                    },
                    None,
                    "none",
                )
            },
        )
        await probe(
            "JWT signed with another key",
            json={"query": "{ subjects { id } }"},
            headers={
                "authorization": "Bearer "
                + jwt.encode(
                    {
                        "sub": "u1",
                        "role": "admin",
                        "aud": "bookbridge",
                        "iss": "bookbridge-auth",
                        "iat": 1,
                        "exp": 2**31,
                    },
                    "x" * 40,
                    "HS256",
                )
            },
        )
        await probe(
            "student JWT reads another's study set",
            json={"query": '{ studySet(id: "someone-elses") { userId } }'},
            headers={"authorization": "Bearer " + tok()},
        )
        await probe(
            "publisher token lists study sets",
            json={"query": "{ studySets { edges { node { userId } } } }"},
            headers={"authorization": f"Bearer {pubkey}"},
        )
        await probe(
            "publisher token, another publisher's analytics",
            json={"query": '{ publisherAnalytics(publisherId: "p2") { totalEvents } }'},
            headers={"authorization": f"Bearer {pubkey}"},
        )
        await probe(
            "publisher token erases a student",
            json={"query": 'mutation { deleteStudentData(userId: "u1") { studySets } }'},
            headers={"authorization": f"Bearer {pubkey}"},
        )
        await probe(
            "unknown persisted-query hash",
            json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}},
        )
        await probe(
            "malformed persisted-query hash",
            json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "zz"}}},
        )
        await probe(
            "hash that does not match the text",
            json={
                "query": "{ subjects { id } }",
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "b" * 64}},
            },
        )
        await probe(
            "10 MB string argument",
            json={
                "query": "query($q: String) { books(filter: {search: $q}) { edges { cursor } } }",
                "variables": {"q": "x" * (10 << 20)},
            },
        )
        await probe(
            "NUL byte in an id",
            json={
                "query": "query($id: ID!) { book(id: $id) { id } }",
                "variables": {"id": "a\u0000b"},
            },
        )
        await probe(
            "deeply nested JSON variables",
            content=b'{"query": "query($v: String) { subjects { id } }", "variables": {"v": '
            + b"[" * 100000
            + b"]" * 100000
            + b"}}",
            headers=J,
        )
        await probe(
            "huge body (20 MiB)", content=b'{"query": "' + b" " * (20 << 20) + b'"}', headers=J
        )
    async with services.engine.begin() as conn:
        await conn.execute(text("DELETE FROM api_keys"))
    await services.close()
    print("| Input | HTTP | Code | Message (truncated) |")
    print("| --- | --- | --- | --- |")
    for label, status, code, msg in rows:
        print(f"| {label} | {status} | {code} | {msg} |")
    print("5xx:", [r for r in rows if r[1] >= 500], file=sys.stderr)


upgrade(URL)
asyncio.run(main())
