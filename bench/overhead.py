"""In-process cost per request of auth, limits and tracing: one client, sequential requests.

    python -m bench.overhead postgresql://.../scratch_db [--requests 400]

Variants: anonymous with tracing off (baseline), a JWT, an API key (one indexed lookup), and
tracing on with every span sampled (SDK + batch processor + an exporter that drops spans)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence

import httpx
import jwt
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import text

from app.auth import keys
from app.core.settings import SecuritySettings, Settings, normalize_database_url
from app.db.migrate import upgrade
from app.observability import tracing
from app.runtime.services import Services
from app.server.factory import create_app

SECRET = "bench-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123"
QUERY = (
    "query Page { books(first: 20) { edges { node { id title publisher { id name } "
    "topics { weight topic { id label } } } } } }"
)


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def seed(services: Services) -> str:
    async with services.engine.begin() as conn:
        for table in ("topic_book_mappings", "books", "topics", "publishers", "api_keys"):
            await conn.execute(text(f"DELETE FROM {table}"))
        await conn.execute(text("INSERT INTO publishers (id, name) VALUES ('p1', 'P')"))
        await conn.execute(text("INSERT INTO topics (id, label) VALUES ('t1', 'T'), ('t2', 'U')"))
        await conn.execute(
            text(
                "INSERT INTO books (id, publisher_id, title, updated_at) "
                "SELECT 'b' || lpad(i::text, 4, '0'), 'p1', 'Book ' || i, now() "
                "FROM generate_series(1, 200) AS i"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO topic_book_mappings (topic_id, book_id, weight) "
                "SELECT t, id, 0.5 FROM books, unnest(ARRAY['t1', 't2']) AS t"
            )
        )
        key, _ = await keys.create_key(conn, "bench", "catalog:write")
    return key


async def timed(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    return samples


async def main(url: str, n: int, block: int = 25) -> None:
    security = SecuritySettings(
        jwt_secret=SECRET, rate_limit_cost_per_minute=0, rate_limit_anonymous_cost_per_minute=0
    )
    settings = Settings(bookbridge_env="test", database_url=url, security=security)
    services = Services.create(settings)
    key = await seed(services)
    now = int(time.time())
    claims = {"sub": "u1", "role": "student", "aud": "bookbridge", "iss": "bookbridge-auth"}
    token = jwt.encode({**claims, "iat": now, "exp": now + 3600}, SECRET, "HS256")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    variants: dict[str, tuple[dict[str, str], bool]] = {
        "anonymous, tracing off": ({}, False),
        "JWT": ({"authorization": f"Bearer {token}"}, False),
        "API key": ({"authorization": f"Bearer {key}"}, False),
        "anonymous, tracing on (all spans)": ({}, True),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await timed(client, {}, 20)  # warm-up
        # Blocks of each variant in turn, so that every variant sees the same machine load.
        for _ in range(max(1, n // block)):
            for name, (headers, traced) in variants.items():
                if traced:
                    tracing.install(provider, services)
                samples[name] += await timed(client, headers, block)
                if traced:
                    tracing.uninstall()
    provider.shutdown()
    await services.close()
    base = statistics.median(samples["anonymous, tracing off"])
    print(f"{n} requests per variant, in blocks of {block}: {QUERY}")
    print("| variant | median ms | p90 ms | vs baseline |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"| {name} | {median * 1000:.2f} | {p90 * 1000:.2f} | {median / base:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    url = normalize_database_url(args.database_url)
    upgrade(url)
    asyncio.run(main(url, args.requests))
    sys.exit(0)
