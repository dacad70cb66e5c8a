"""The raw limit: each read scenario's JSON built by PostgreSQL (json_agg) behind a bare Starlette route."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _cursor_sql(expr: str) -> str:
    """The service's keyset cursor (urlsafe base64 of a JSON list, unpadded), built in SQL."""
    return (
        f"rtrim(translate(encode(convert_to(to_json({expr})::text, 'UTF8'), 'base64'),"
        " E'+/\\n', '-_'), '=')"
    )


CATALOG_PAGE = f"""
WITH page AS (
    SELECT id, publisher_id, title, description, tags FROM books
    WHERE id > $1 ORDER BY id LIMIT $2 + 1
), shown AS (SELECT * FROM page ORDER BY id LIMIT $2)
SELECT json_build_object('data', json_build_object('books', json_build_object(
  'edges', coalesce((SELECT json_agg(json_build_object(
      'cursor', {_cursor_sql("ARRAY[b.id]")},
      'node', json_build_object(
        'id', b.id, 'title', b.title, 'description', b.description, 'tags', b.tags,
        'publisher', (SELECT json_build_object('id', p.id, 'name', p.name)
                      FROM publishers p WHERE p.id = b.publisher_id),
        'topics', coalesce((
          SELECT json_agg(json_build_object('weight', m.weight, 'topic', json_build_object(
                   'id', t.id, 'label', t.label,
                   'subject', (SELECT json_build_object('id', s.id, 'name', s.name)
                               FROM subjects s WHERE s.id = t.subject_id)))
                 ORDER BY m.weight DESC, m.topic_id)
          FROM topic_book_mappings m JOIN topics t ON t.id = m.topic_id
          WHERE m.book_id = b.id), '[]'))) ORDER BY b.id)
    FROM shown b), '[]'),
  'pageInfo', json_build_object(
    'hasNextPage', (SELECT count(*) FROM page) > $2,
    'endCursor', (SELECT {_cursor_sql("ARRAY[max(id)]")} FROM shown)))))::text
"""

DEEP = """
WITH page AS (
    SELECT id, label FROM topics WHERE id > $1 ORDER BY id LIMIT $2
)
SELECT json_build_object('data', json_build_object('topics', json_build_object(
  'edges', coalesce((SELECT json_agg(json_build_object('node', json_build_object(
      'id', t.id, 'label', t.label,
      'books', json_build_object('edges', coalesce((
        SELECT json_agg(json_build_object('weight', mb.weight, 'node', json_build_object(
                 'id', b.id, 'title', b.title,
                 'publisher', json_build_object('id', p.id, 'name', p.name,
                   'books', json_build_object('edges', coalesce((
                      SELECT json_agg(json_build_object('node', json_build_object(
                               'id', pb.id, 'title', pb.title)) ORDER BY pb.id)
                      FROM (SELECT id, title FROM books WHERE publisher_id = p.id
                            ORDER BY id LIMIT $4) pb), '[]')))))
               ORDER BY mb.weight DESC, mb.book_id DESC)
        FROM (SELECT m.book_id, m.weight FROM topic_book_mappings m WHERE m.topic_id = t.id
              ORDER BY m.weight DESC, m.book_id DESC LIMIT $3) mb
        JOIN books b ON b.id = mb.book_id JOIN publishers p ON p.id = b.publisher_id),
        '[]')))) ORDER BY t.id)
    FROM page t), '[]'))))::text
"""

BOOK_BY_ID = """
SELECT json_build_object('data', json_build_object('book', (
  SELECT json_build_object(
    'id', b.id, 'title', b.title, 'description', b.description, 'tags', b.tags,
    'updatedAt', b.updated_at,
    'publisher', (SELECT json_build_object('id', p.id, 'name', p.name)
                  FROM publishers p WHERE p.id = b.publisher_id),
    'topics', coalesce((
      SELECT json_agg(json_build_object('weight', m.weight,
               'topic', json_build_object('id', t.id, 'label', t.label))
             ORDER BY m.weight DESC, m.topic_id)
      FROM topic_book_mappings m JOIN topics t ON t.id = m.topic_id
      WHERE m.book_id = b.id), '[]'))
  FROM books b WHERE b.id = $1)))::text
"""


def reco_candidates_sql() -> str:
    """The recommender's own topic-candidate query (app.reco.data), for one study set's topics."""
    from app.reco import data

    inner = str(data._TOPIC_CANDIDATES).replace(
        "unnest(CAST(:topics AS text[])) AS t(topic_id)",
        "(SELECT topic_id FROM study_set_topics WHERE study_set_id = $1) AS t",
    )
    assert "$1" in inner, "the recommender's candidate query changed shape"
    inner = inner.replace(":limit", "$2")
    return f"SELECT coalesce(json_agg(c), '[]')::text FROM ({inner}) c"


def _after_id(cursor: str | None) -> str:
    if not cursor:
        return ""
    value: list[str] = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return value[0]


def create_app() -> Starlette:
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
        state["pool"] = await asyncpg.create_pool(
            url, min_size=2, max_size=10, server_settings={"timezone": "UTC"}
        )
        try:
            yield
        finally:
            await state["pool"].close()

    async def one(sql: str, *args: Any) -> Response:
        async with state["pool"].acquire() as conn:
            body: str = await conn.fetchval(sql, *args)
        return Response(body, media_type="application/json")

    async def variables(request: Request) -> dict[str, Any]:
        payload: dict[str, Any] = orjson.loads(await request.body())
        return payload.get("variables") or {}

    async def catalog_page(request: Request) -> Response:
        v = await variables(request)
        return await one(CATALOG_PAGE, _after_id(v.get("after")), v.get("first", 50))

    async def deep(request: Request) -> Response:
        v = await variables(request)
        return await one(DEEP, _after_id(v.get("after")), v["topics"], v["books"], v["pubBooks"])

    async def book_by_id(request: Request) -> Response:
        v = await variables(request)
        return await one(BOOK_BY_ID, v["id"])

    candidates = reco_candidates_sql()

    async def reco_candidates(request: Request) -> Response:
        v = await variables(request)
        return await one(candidates, v["id"], 200)

    async def healthz(request: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/raw/catalog_page", catalog_page, methods=["POST"]),
            Route("/raw/deep", deep, methods=["POST"]),
            Route("/raw/book_by_id", book_by_id, methods=["POST"]),
            Route("/raw/reco_candidates", reco_candidates, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
