"""Publisher analytics from aggregates only: every number shown is made of k-safe cells.

A cell is one book on one UTC day (`analytics_daily_book`); it is k-safe when k or more distinct
students are behind it. Every number the report shows is a sum (events) or a distinct count
(students) over k-safe cells only, and a withheld cell is in none of them. So any difference of
shown numbers (two ranges that differ by a day, a day's total minus its books) is again made of
k-safe cells and says nothing about a withheld one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.reco.tracing import sql_span


@dataclass(frozen=True, slots=True)
class Point:
    day: date
    events: int | None
    students: int | None


@dataclass(frozen=True, slots=True)
class BookEngagement:
    book_id: str
    events: int | None
    peak_daily_students: int | None


@dataclass(frozen=True, slots=True)
class PublisherReport:
    publisher_id: str
    total_events: int | None
    timeline: list[Point]
    books: list[BookEngagement]
    suppressed_days: int


_CELLS = """
    WITH cells AS (
        SELECT a.day, a.book_id, a.events, a.students, a.students >= :k AS safe
        FROM analytics_daily_book a JOIN books b ON b.id = a.book_id
        WHERE b.publisher_id = :p AND (CAST(:lo AS date) IS NULL OR a.day >= :lo)
          AND (CAST(:hi AS date) IS NULL OR a.day <= :hi)
    )
"""
# A day's students come from the worker's publisher row, which counts the distinct students of
# that day's k-safe cells; it was built for one k (analytics_refresh), and for another k it is
# not used at all (students null until the worker rebuilds), since its cells would differ.
_TIMELINE = text(
    _CELLS
    + """
    SELECT c.day, sum(c.events) FILTER (WHERE c.safe) AS events, max(p.students) AS students
    FROM cells c
    LEFT JOIN analytics_daily_publisher p ON p.publisher_id = :p AND p.day = c.day
         AND (SELECT r.k FROM analytics_refresh r WHERE r.name = 'analytics') = :k
    GROUP BY c.day ORDER BY c.day
    """
)
_BOOKS = text(
    _CELLS
    + """
    SELECT book_id, sum(events) FILTER (WHERE safe) AS events,
           max(students) FILTER (WHERE safe) AS peak
    FROM cells GROUP BY book_id
    ORDER BY sum(events) FILTER (WHERE safe) DESC NULLS LAST, book_id LIMIT :limit
    """
)


def _day(value: datetime | None) -> date | None:
    """The UTC day of a bound (the cells are UTC days); a bound without an offset is UTC."""
    if value is None:
        return None
    return value.astimezone(UTC).date() if value.tzinfo else value.date()


@sql_span("publisher_analytics")
async def publisher_report(
    conn: AsyncConnection,
    publisher_id: str,
    start: datetime | None,
    end: datetime | None,
    k: int,
    book_limit: int = 20,
) -> PublisherReport:
    """The publisher's days and books over the range, each made of k-safe book-days only.

    A day shows the events of its k-safe book-days and the distinct students behind them; a
    day without any shows nulls (and counts as suppressed). A book shows the events of its
    k-safe days and its most students on one of them; a book without any shows nulls, and is
    ranked after the others by id, so its rank says nothing about its withheld days either.
    """
    params = {"p": publisher_id, "lo": _day(start), "hi": _day(end), "k": k}
    timeline, hidden = [], 0
    for r in (await conn.execute(_TIMELINE, params)).all():
        if r.events is None:
            hidden += 1
            timeline.append(Point(r.day, None, None))
        else:
            students = int(r.students) if r.students is not None else None
            timeline.append(Point(r.day, int(r.events), students))
    shown = [p.events for p in timeline if p.events is not None]
    books = [
        BookEngagement(r.book_id, int(r.events), int(r.peak))
        if r.events is not None
        else BookEngagement(r.book_id, None, None)
        for r in (await conn.execute(_BOOKS, params | {"limit": book_limit})).all()
    ]
    return PublisherReport(publisher_id, sum(shown) if shown else None, timeline, books, hidden)
