"""Publisher analytics from aggregates only; counts behind fewer than k students are withheld."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bookbridge.app.reco.tracing import sql_span


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


_TIMELINE = text(
    """
    SELECT day, events, students FROM analytics_daily_publisher
    WHERE publisher_id = :p AND (CAST(:lo AS date) IS NULL OR day >= :lo)
      AND (CAST(:hi AS date) IS NULL OR day <= :hi)
    ORDER BY day
    """
)
_BOOKS = text(
    """
    SELECT a.book_id, sum(a.events) AS events, max(a.students) AS peak
    FROM analytics_daily_book a JOIN books b ON b.id = a.book_id
    WHERE b.publisher_id = :p AND (CAST(:lo AS date) IS NULL OR a.day >= :lo)
      AND (CAST(:hi AS date) IS NULL OR a.day <= :hi)
    GROUP BY a.book_id ORDER BY sum(a.events) DESC, a.book_id LIMIT :limit
    """
)


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


@sql_span("publisher_analytics")
async def publisher_report(
    conn: AsyncConnection,
    publisher_id: str,
    start: datetime | None,
    end: datetime | None,
    k: int,
    book_limit: int = 20,
) -> PublisherReport:
    """Per-day events and distinct students; a day drawn from fewer than k students shows nulls.

    A book's range total is shown only when some single day had k or more students (a lower
    bound of its distinct students). The total counts the days shown, so subtracting the shown
    days from it reveals nothing about the withheld ones.
    """
    params = {"p": publisher_id, "lo": _day(start), "hi": _day(end)}
    timeline, hidden = [], 0
    for r in (await conn.execute(_TIMELINE, params)).all():
        if r.students >= k:
            timeline.append(Point(r.day, int(r.events), int(r.students)))
        else:
            hidden += 1
            timeline.append(Point(r.day, None, None))
    shown = [p.events for p in timeline if p.events is not None]
    books = [
        BookEngagement(r.book_id, int(r.events), int(r.peak))
        if r.peak >= k
        else BookEngagement(r.book_id, None, None)
        for r in (await conn.execute(_BOOKS, params | {"limit": book_limit})).all()
    ]
    return PublisherReport(publisher_id, sum(shown) if shown else None, timeline, books, hidden)
