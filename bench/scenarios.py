"""The benchmark scenarios: GraphQL documents and the request bodies each one cycles through."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt
import orjson

from bench import peer

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


STUDENT_HOME = """query StudentHome {
  studySets(first: 10) {
    edges { node { id title topics { id label }
      recommendations(first: 5) { strategy items { score book { id title publisher { id name } } } } } }
  }
}"""
STUDENTS = 200  # student_home cycles through 200 students, each with their own JWT
# The bench server's JWT secret (bench.__main__.server_env); a bench-only value.
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789abcdef0123456789abcdef"
JWT_AUDIENCE, JWT_ISSUER = "bookbridge", "bookbridge-auth"


# Issue 16's latencies, at one client: a study set's list asked by its student, cold (no cache
# of any kind holds it and no stored list: computed from PostgreSQL), stored (never asked
# before, served from the list the worker stored) and cached (asked again and again).
STUDY_SET_LIST = """query StudySetList($id: ID!) {
  recommendations(studySetId: $id, first: 5) {
    strategy items { score book { id title publisher { id name } } }
  }
}"""
COLD_FIRST = 7  # a `first` no other scenario asks for: the cold lists are in no cache
# recommendation_stored's: in no cache, but the stored list is served (any `first` is its
# prefix); each set with each of them, so a run has enough distinct requests at ~400 req/s
STORED_FIRSTS = (8, 9, 11, 12)
# Fewest SQL statements of a computed HYBRID list's request: its inputs (three) and its books.
# A cache hit costs 1 (the books), a stored list 2 (its read, the books): a response of
# recommendation_cold with fewer was not cold, and the run is refused (bench/measure.py).
COLD_MIN_SQL = 4
STORED_MIN_SQL = 2  # a stored list's request: its read and the books (a cache hit: 1)
HOT_SETS = 20  # recommendation_hot cycles through 20 study sets (hits after the first pass)


@dataclass
class Scenario:
    name: str
    bodies: list[bytes]
    raw_path: str | None  # the raw limit's route; None when the raw limit is measured otherwise
    same_json: bool = True  # the raw route returns the very JSON bookbridge does
    headers: dict[str, str] = field(default_factory=dict)
    note: str = ""
    # the same logical requests for the PostGraphile peer (None: it has no equivalent)
    peer_bodies: list[bytes] | None = None
    # headers of each body (a student's JWT each), added to `headers`
    body_headers: list[dict[str, str]] | None = None
    public: bool = True  # anonymous public catalog reads: the response cache can answer them
    concurrency: int | None = None  # clients, when not the run's --concurrency
    # each wrk run (warm-up runs too) gets bodies no earlier run sent: cold requests
    fresh: bool = False
    # the study set each body asks for, and what is done to the sets of a `fresh` run before
    # it (bench/measure.py `prepare`): their Redis entries removed and their stored lists
    # deleted ("unstored") or stored ("stored"); every response must run `min_sql` statements
    study_set_ids: list[str] | None = None
    prepare: str | None = None
    min_sql: int = 0

    def requests(self) -> list[tuple[bytes, dict[str, str]]]:
        """Every body with its full headers."""
        each = self.body_headers or [{}] * len(self.bodies)
        return [(b, {**self.headers, **h}) for b, h in zip(self.bodies, each, strict=True)]


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
    picked = book_ids[::step][:BOOKS]
    books = [body(BOOK_BY_ID, {"id": b}) for b in picked]
    peer_catalog = [
        body(peer.CATALOG_PAGE, {"first": PAGE_SIZE, "after": peer.cursor(_after(a))})
        for a in pages
    ]
    peer_deep = [
        body(
            peer.DEEP,
            {
                "topics": DEEP_TOPICS,
                "books": DEEP_BOOKS,
                "pubBooks": DEEP_PUB_BOOKS,
                "after": peer.cursor(_after(a)),
            },
        )
        for a in deep_after
    ]
    peer_books = [body(peer.BOOK_BY_ID, {"id": b}) for b in picked]
    return [
        Scenario("catalog_page", catalog, "/raw/catalog_page", peer_bodies=peer_catalog),
        Scenario("deep", deep, "/raw/deep", peer_bodies=peer_deep),
        Scenario("book_by_id", books, "/raw/book_by_id", peer_bodies=peer_books),
    ]


async def by_name(url: str, name: str) -> Scenario | None:
    """One read or recommendation scenario by its name (the tracing tools' `--scenario`); the
    recommendation ones with an admin key made for the occasion (bench.seed.admin_key)."""
    if name in ("recommendations_cached", "recommendations_uncached"):
        from bench import seed

        found = await recommendation_scenarios(url, await seed.admin_key(url))
    else:
        found = await read_scenarios(url)
    return next((s for s in found if s.name == name), None)


def _after(value: str | None) -> str | None:
    """The id a service cursor points after."""
    if value is None:
        return None
    decoded: list[str] = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return decoded[0]


def student_token(user_id: str, lifetime: int = 6 * 3600) -> str:
    """A student's JWT as the auth service issues it, signed with the bench server's secret."""
    now = int(time.time())
    claims = {"sub": user_id, "role": "student", "aud": JWT_AUDIENCE, "iss": JWT_ISSUER}
    return jwt.encode({**claims, "iat": now, "exp": now + lifetime}, JWT_SECRET, "HS256")


async def student_home_scenario(url: str) -> Scenario:
    """Students who have study sets with topics, each asking their own home page."""
    conn = await asyncpg.connect(url)
    try:
        users = [
            r["user_id"]
            for r in await conn.fetch(
                "SELECT DISTINCT s.user_id FROM study_sets s WHERE EXISTS "
                "(SELECT 1 FROM study_set_topics t WHERE t.study_set_id = s.id) "
                "ORDER BY s.user_id LIMIT $1",
                STUDENTS,
            )
        ]
    finally:
        await conn.close()
    return Scenario(
        "student_home",
        [body(STUDENT_HOME, {}) for _ in users],
        None,
        same_json=False,
        body_headers=[{"Authorization": f"Bearer {student_token(u)}"} for u in users],
        public=False,
        note=f"{len(users)} students, a JWT each; no raw or peer equivalent (computed recommendations)",
    )


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
            public=False,
        ),
        Scenario(
            "recommendations_uncached",
            cold,
            raw,
            same_json=False,
            headers=auth,
            note="raw = the topic-candidate SQL of the same study set",
            public=False,
        ),
    ]


async def latency_scenarios(url: str) -> list[Scenario]:
    """Issue 16's one-client latencies of a study set's list, each study set asked by its own
    student (their JWT). Each wrk run of the first two takes a slice of study sets of its own
    (`fresh`), with a `first` no other scenario uses, so neither cache (in-process, Redis)
    holds its lists. Cold: before each run the bench also deletes the slice's stored lists
    (study_set_lists) and Redis entries, so each request computes its list from PostgreSQL
    (checked: each response ran at least COLD_MIN_SQL statements). Stored: the lists the
    worker stored after the lists job, read (the meaning `recommendation_cold` had in stop 16).
    Cached: 20 study sets again and again."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT s.id, s.user_id FROM study_sets s WHERE EXISTS "
            "(SELECT 1 FROM study_set_topics t WHERE t.study_set_id = s.id) ORDER BY s.id"
        )
    finally:
        await conn.close()

    def asked(first: int, picked: list[Any]) -> tuple[list[bytes], list[dict[str, str]]]:
        bodies = [
            body(STUDY_SET_LIST.replace("first: 5", f"first: {first}"), {"id": r["id"]})
            for r in picked
        ]
        headers = [{"Authorization": f"Bearer {student_token(r['user_id'])}"} for r in picked]
        return bodies, headers

    cold, cold_headers = asked(COLD_FIRST, list(rows))
    stored: list[bytes] = []
    stored_headers: list[dict[str, str]] = []
    for first in STORED_FIRSTS:
        more, more_headers = asked(first, list(rows))
        stored += more
        stored_headers += more_headers
    hot, hot_headers = asked(5, list(rows[:HOT_SETS]))
    return [
        Scenario(
            "recommendation_cold",
            cold,
            None,
            same_json=False,
            body_headers=cold_headers,
            public=False,
            concurrency=1,
            fresh=True,
            study_set_ids=[r["id"] for r in rows],
            prepare="unstored",
            min_sql=COLD_MIN_SQL,
            note="one client; each request a study set never asked before, its stored list "
            "and Redis entries deleted before the run (computed from PostgreSQL, checked by "
            "its statement count), asked by its student",
        ),
        Scenario(
            "recommendation_stored",
            stored,
            None,
            same_json=False,
            body_headers=stored_headers,
            public=False,
            concurrency=1,
            fresh=True,
            study_set_ids=[r["id"] for r in rows] * len(STORED_FIRSTS),
            prepare="stored",
            min_sql=STORED_MIN_SQL,
            note="one client; each request a study set never asked before, its Redis entries "
            "deleted and its list stored before the run (as the worker stores it: the stored "
            "list is served), asked by its student",
        ),
        Scenario(
            "recommendation_hot",
            hot,
            None,
            same_json=False,
            body_headers=hot_headers,
            public=False,
            concurrency=1,
            note=f"one client; {HOT_SETS} study sets again and again (cache hits), each by its "
            "student",
        ),
    ]
