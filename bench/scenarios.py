"""The benchmark scenarios: GraphQL documents and the request bodies each one cycles through."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

CATALOG_PAGE = """query CatalogPage($first: Int, $after: String) {
  books(first: $first, after: $after) {
    edges { cursor node { id title description tags publisher { id name }
      topics { weight topic { id label subject { id name } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

DEEP = """query Deep($topics: Int, $books: Int, $pubBooks: Int, $after: String) {
  topics(first: $topics, after: $after) {
    edges { node { id label books(first: $books) {
      edges { weight node { id title publisher { id name books(first: $pubBooks) {
        edges { node { id title } } } } } } } } }
  }
}"""

BOOK_BY_ID = """query Book($id: ID!) {
  book(id: $id) { id title description tags updatedAt publisher { id name }
    topics { weight topic { id label } } }
}"""

PAGE_SIZE = 50
PAGES = 20  # catalog_page cycles through the first 20 pages (1,000 books)
DEEP_TOPICS, DEEP_BOOKS, DEEP_PUB_BOOKS = 10, 10, 5
BOOKS = 100  # book_by_id cycles through 100 books spread over the catalog


def cursor(value: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value])).decode().rstrip("=")


def body(query: str, variables: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": query, "variables": variables})


RECOMMENDATIONS = """query Recommendations($id: ID!) {
  recommendations(studySetId: $id, first: 10) {
    strategy items { score reasons book { id title } }
  }
}"""
CACHED_SETS = 20  # recommendations_cached cycles through 20 study sets (hits after the first pass)


@dataclass
class Scenario:
    name: str
    bodies: list[bytes]
    raw_path: str | None  # the raw limit's route; None when the raw limit is measured otherwise
    same_json: bool = True  # the raw route returns the very JSON bookbridge does
    headers: dict[str, str] = field(default_factory=dict)
    note: str = ""


async def read_scenarios(url: str) -> list[Scenario]:
    """Bodies built from the seeded data: page cursors, topic pages and book ids."""
    conn = await asyncpg.connect(url)
    try:
        book_ids = [r["id"] for r in await conn.fetch("SELECT id FROM books ORDER BY id")]
        topic_ids = [r["id"] for r in await conn.fetch("SELECT id FROM topics ORDER BY id")]
    finally:
        await conn.close()
    pages: list[str | None] = [None] + [
        cursor(book_ids[i * PAGE_SIZE - 1])
        for i in range(1, PAGES)
        if i * PAGE_SIZE < len(book_ids)
    ]
    catalog = [body(CATALOG_PAGE, {"first": PAGE_SIZE, "after": a}) for a in pages]
    later = [cursor(topic_ids[i - 1]) for i in range(DEEP_TOPICS, len(topic_ids), DEEP_TOPICS)]
    deep_after: list[str | None] = [None, *later[:19]]
    deep = [
        body(
            DEEP,
            {"topics": DEEP_TOPICS, "books": DEEP_BOOKS, "pubBooks": DEEP_PUB_BOOKS, "after": a},
        )
        for a in deep_after
    ]
    step = max(1, len(book_ids) // BOOKS)
    books = [body(BOOK_BY_ID, {"id": b}) for b in book_ids[::step][:BOOKS]]
    return [
        Scenario("catalog_page", catalog, "/raw/catalog_page"),
        Scenario("deep", deep, "/raw/deep"),
        Scenario("book_by_id", books, "/raw/book_by_id"),
    ]


async def recommendation_scenarios(url: str, token: str) -> list[Scenario]:
    """Cached: a few study sets again and again. Uncached: every study set in turn, so each
    request misses (the in-process TTL is 5 s; a pass over all sets takes longer)."""
    conn = await asyncpg.connect(url)
    try:
        sets = [
            r["id"]
            for r in await conn.fetch(
                "SELECT s.id FROM study_sets s WHERE EXISTS "
                "(SELECT 1 FROM study_set_topics t WHERE t.study_set_id = s.id) ORDER BY s.id"
            )
        ]
    finally:
        await conn.close()
    auth = {"Authorization": f"Bearer {token}"}
    hot = [body(RECOMMENDATIONS, {"id": i}) for i in sets[:CACHED_SETS]]
    cold = [body(RECOMMENDATIONS, {"id": i}) for i in sets]
    raw = "/raw/reco_candidates"
    return [
        Scenario(
            "recommendations_cached",
            hot,
            raw,
            same_json=False,
            headers=auth,
            note="raw = the topic-candidate SQL of the same study set",
        ),
        Scenario(
            "recommendations_uncached",
            cold,
            raw,
            same_json=False,
            headers=auth,
            note="raw = the topic-candidate SQL of the same study set",
        ),
    ]
