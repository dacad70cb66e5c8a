"""Worker jobs in SQL: popularity rollup, trending lists, aggregate reconciliation, reports."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_POPULARITY = text(
    """
    INSERT INTO book_popularity (book_id, events, decayed, base_score, last_day, refreshed_at)
    SELECT book_id, events, decayed,
           CASE WHEN events > 0 THEN ln(events + 1) * decayed / events ELSE 0 END, last_day, now()
    FROM (
        SELECT book_id, sum(events) AS events,
               sum(events * power(0.5, greatest(CAST(:as_of AS date) - day, 0) / :half_life))
                   AS decayed,
               max(day) AS last_day
        FROM engagement_daily_book GROUP BY book_id
    ) agg
    """
)


async def refresh_popularity(conn: AsyncConnection, half_life_days: float, as_of: date) -> int:
    """Roll the daily per-book aggregates up into engagement counts and decayed counts."""
    await conn.execute(text("DELETE FROM book_popularity"))
    result = await conn.execute(_POPULARITY, {"as_of": as_of, "half_life": half_life_days})
    await conn.execute(text("ANALYZE book_popularity"))
    return int(getattr(result, "rowcount", 0) or 0)


_TOPIC_TOP = text(
    """
    INSERT INTO topic_top_books (topic_id, rank, book_id, weight, events, decayed, base_score)
    SELECT topic_id, rn, book_id, weight, events, decayed, base_score FROM (
        SELECT m.topic_id, m.book_id, m.weight, coalesce(p.events, 0) AS events,
               coalesce(p.decayed, 0) AS decayed, coalesce(p.base_score, 0) AS base_score,
               row_number() OVER (
                   PARTITION BY m.topic_id
                   ORDER BY m.weight * coalesce(p.base_score, 0) DESC, m.weight DESC, m.book_id
               ) AS rn
        FROM topic_book_mappings m LEFT JOIN book_popularity p ON p.book_id = m.book_id
    ) ranked
    WHERE rn <= :size
    """
)


async def refresh_topic_top(conn: AsyncConnection, size: int) -> int:
    """Rank each topic's books by the formula, so a request reads a few rows per topic."""
    await conn.execute(text("DELETE FROM topic_top_books"))
    result = await conn.execute(_TOPIC_TOP, {"size": size})
    await conn.execute(text("ANALYZE topic_top_books"))
    return int(getattr(result, "rowcount", 0) or 0)


_TRENDING = text(
    """
    WITH scopes AS (
        SELECT DISTINCT m.book_id, coalesce(t.subject_id, '') AS s, coalesce(t.grade_id, '') AS g
        FROM topic_book_mappings m JOIN topics t ON t.id = m.topic_id
    ), expanded AS (
        SELECT book_id, s, g FROM scopes
        UNION SELECT book_id, s, '' FROM scopes
        UNION SELECT book_id, '', g FROM scopes
        UNION SELECT book_id, '', '' FROM book_popularity
    ), ranked AS (
        SELECT e.s, e.g, e.book_id, p.decayed AS score,
               row_number() OVER (PARTITION BY e.s, e.g ORDER BY p.decayed DESC, e.book_id) AS rn
        FROM expanded e JOIN book_popularity p ON p.book_id = e.book_id
        WHERE p.decayed > 0
    )
    INSERT INTO trending_books (subject_id, grade_id, rank, book_id, score)
    SELECT s, g, rn, book_id, score FROM ranked WHERE rn <= :size
    """
)


async def refresh_trending(conn: AsyncConnection, size: int) -> int:
    """Rank books by decayed popularity within each subject, grade, subject x grade, and overall."""
    await conn.execute(text("DELETE FROM trending_books"))
    result = await conn.execute(_TRENDING, {"size": size})
    return int(getattr(result, "rowcount", 0) or 0)


_RECONCILE = """
    WITH truth AS (
        SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, {key}, event_type, count(*) AS events
        FROM engagement_events WHERE {key} IS NOT NULL GROUP BY 1, 2, 3
    ), diff AS (
        SELECT coalesce(t.day, a.day) AS day, coalesce(t.{key}, a.{key}) AS {key},
               coalesce(t.event_type, a.event_type) AS event_type, t.events AS want
        FROM truth t FULL JOIN engagement_daily_{table} a
          ON a.day = t.day AND a.{key} = t.{key} AND a.event_type = t.event_type
        WHERE t.events IS DISTINCT FROM a.events
    ), removed AS (
        DELETE FROM engagement_daily_{table} a USING diff d
        WHERE d.want IS NULL AND a.day = d.day AND a.{key} = d.{key} AND a.event_type = d.event_type
        RETURNING 1
    ), fixed AS (
        INSERT INTO engagement_daily_{table} AS a (day, {key}, event_type, events)
        SELECT day, {key}, event_type, want FROM diff WHERE want IS NOT NULL
        ON CONFLICT (day, {key}, event_type) DO UPDATE SET events = EXCLUDED.events
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM removed) + (SELECT count(*) FROM fixed) AS repaired
"""


async def reconcile_aggregates(conn: AsyncConnection) -> dict[str, int]:
    """Recount the daily aggregates from the raw events and repair rows that disagree.

    Holds a SHARE lock on engagement_events for the transaction, so ingestion (which updates the
    aggregates in the same transaction as the events) waits instead of racing the recount.
    """
    await conn.execute(text("LOCK TABLE engagement_events IN SHARE MODE"))
    out = {}
    for table in ("book", "topic", "study_set"):
        sql = text(_RECONCILE.format(table=table, key=f"{table}_id"))
        out[table] = int((await conn.execute(sql)).scalar_one())
    return out


_REPORT = text(
    """
    SELECT 'books_without_topics' AS kind, count(*) AS n,
           (array_agg(b.id ORDER BY b.id))[1:20] AS sample
    FROM books b WHERE NOT EXISTS (SELECT 1 FROM topic_book_mappings m WHERE m.book_id = b.id)
    UNION ALL
    SELECT 'topics_without_books', count(*), (array_agg(t.id ORDER BY t.id))[1:20]
    FROM topics t WHERE NOT EXISTS (SELECT 1 FROM topic_book_mappings m WHERE m.topic_id = t.id)
    """
)


async def catalog_report(conn: AsyncConnection) -> dict[str, Any]:
    """Books without topics and topics without books: counts and the first 20 ids of each."""
    rows = (await conn.execute(_REPORT)).all()
    return {r.kind: {"count": int(r.n), "sample": list(r.sample or [])} for r in rows}


# The events behind the analytics: of every day, or of the given UTC days only (as ranges of
# occurred_at, so that the index on it finds them).
_EVENTS_OF_ALL = "engagement_events e"
_EVENTS_OF_DAYS = """engagement_events e JOIN unnest(CAST(:days AS date[])) AS d(day)
            ON e.occurred_at >= d.day::timestamp AT TIME ZONE 'UTC'
           AND e.occurred_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'"""
# A publisher's day counts only its k-safe book-days (k or more distinct students on one book
# that day), and its students are the distinct students of those: so the day minus the book
# totals shown for it is again made of k-safe cells (see reco/analytics.py).
_ANALYTICS = {
    "publisher": """
        INSERT INTO analytics_daily_publisher (day, publisher_id, events, students)
        WITH cells AS (
            SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.book_id, s.user_id
            FROM {events} JOIN study_sets s ON s.id = e.study_set_id
            WHERE e.book_id IS NOT NULL
        ), safe AS (
            SELECT day, book_id FROM cells GROUP BY 1, 2 HAVING count(DISTINCT user_id) >= :k
        )
        SELECT c.day, b.publisher_id, count(*), count(DISTINCT c.user_id)
        FROM cells c JOIN safe USING (day, book_id) JOIN books b ON b.id = c.book_id
        GROUP BY 1, 2""",
    "book": """
        INSERT INTO analytics_daily_book (day, book_id, events, students)
        SELECT (e.occurred_at AT TIME ZONE 'UTC')::date, e.book_id, count(*),
               count(DISTINCT s.user_id)
        FROM {events} JOIN study_sets s ON s.id = e.study_set_id
        WHERE e.book_id IS NOT NULL GROUP BY 1, 2""",
    "topic": """
        INSERT INTO analytics_daily_topic (day, topic_id, events, students)
        SELECT (e.occurred_at AT TIME ZONE 'UTC')::date, e.topic_id, count(*),
               count(DISTINCT s.user_id)
        FROM {events} JOIN study_sets s ON s.id = e.study_set_id
        WHERE e.topic_id IS NOT NULL GROUP BY 1, 2""",
}
_BUILT_K = text("SELECT k FROM analytics_refresh WHERE name = 'analytics'")
_TAKE_DIRTY_DAYS = text(
    "WITH taken AS (DELETE FROM analytics_dirty_days RETURNING day) "
    "SELECT DISTINCT day FROM taken ORDER BY day"
)
_DAYS_BUILT = text(
    "SELECT count(*) FROM (SELECT day FROM analytics_daily_book "
    "UNION SELECT day FROM analytics_daily_topic) d"
)
_REBUILT = text(
    """
    INSERT INTO analytics_refresh (name, k, refreshed_at, rebuilt_at)
    VALUES ('analytics', :k, now(), now())
    ON CONFLICT (name) DO UPDATE SET k = EXCLUDED.k, refreshed_at = now(), rebuilt_at = now()
    """
)
_REFRESHED = text("UPDATE analytics_refresh SET refreshed_at = now() WHERE name = 'analytics'")


async def refresh_analytics(conn: AsyncConnection, k: int, full: bool = False) -> dict[str, Any]:
    """Bring the analytics aggregates up to date with the raw events.

    Must be the first thing its transaction runs (it sets the isolation level).

    Recomputes whole UTC days (distinct students do not add up), and only the days that
    triggers marked in analytics_dirty_days since the last run; every day when `full`, on the
    first run, or for another k than the last build's (the publisher rows depend on k).
    One snapshot (REPEATABLE READ) for all of it: the dirty rows it takes are exactly those
    whose changes it sees, and a change that commits meanwhile leaves its row for the next run.
    Returns whether it rebuilt in full, how many days it recomputed and the rows written.
    """
    await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    full = full or await conn.scalar(_BUILT_K) != k
    days = [r.day for r in (await conn.execute(_TAKE_DIRTY_DAYS)).all()]
    if full:
        rows = await _recompute(conn, k, None)
        recomputed = int((await conn.scalar(_DAYS_BUILT)) or 0)
        await conn.execute(_REBUILT, {"k": k})
    else:
        rows = await _recompute(conn, k, days) if days else dict.fromkeys(_ANALYTICS, 0)
        recomputed = len(days)
        await conn.execute(_REFRESHED)
    return {"full": full, "days": recomputed, "rows": rows}


async def _recompute(conn: AsyncConnection, k: int, days: list[date] | None) -> dict[str, int]:
    """Replace the aggregates of the given days (None: of every day) by a recount."""
    out = {}
    events = _EVENTS_OF_ALL if days is None else _EVENTS_OF_DAYS
    for name, sql in _ANALYTICS.items():
        if days is None:
            await conn.execute(text(f"DELETE FROM analytics_daily_{name}"))
        else:
            await conn.execute(
                text(f"DELETE FROM analytics_daily_{name} WHERE day = ANY(CAST(:days AS date[]))"),
                {"days": days},
            )
        result = await conn.execute(text(sql.format(events=events)), {"k": k, "days": days})
        out[name] = int(getattr(result, "rowcount", 0) or 0)
    return out
