"""Publisher analytics: aggregates of engagement with a publisher's books, never per student."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from bookbridge.graphql_schema.catalog import Book


@strawberry.type(description="Engagement of one day; counts from fewer than k students are null.")
class EngagementPoint:
    day: date
    events: int | None
    students: int | None


@strawberry.type(description="A book's engagement over the range; null when too few students.")
class BookEngagement:
    book: Book
    events: int | None
    peak_daily_students: int | None = strawberry.field(
        description="The most distinct students on one day (a lower bound of the range's)."
    )


@strawberry.type
class PublisherAnalytics:
    publisher_id: strawberry.ID
    from_: datetime | None = strawberry.field(name="from")
    to: datetime | None
    total_events: int | None = strawberry.field(
        description="Sum over the days shown; days withheld for k-anonymity are not counted."
    )
    timeline: list[EngagementPoint]
    books: list[BookEngagement] = strawberry.field(
        default_factory=list, description="The publisher's most engaged books (up to 20)."
    )
    k_anonymity: int = strawberry.field(
        default=5, description="Counts drawn from fewer distinct students than this are withheld."
    )
    suppressed_days: int = 0
