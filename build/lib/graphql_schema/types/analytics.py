"""Publisher analytics: aggregates of engagement with a publisher's books, never per student.

Every number is made of k-safe book-days (one book on one UTC day, k or more distinct students);
see app/reco/analytics.py.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from graphql_schema.types.catalog import Book


@strawberry.type(
    description="One UTC day over its k-safe book-days (books with k or more distinct students "
    "that day); null when the day has none."
)
class EngagementPoint:
    day: date
    events: int | None
    students: int | None = strawberry.field(
        description="Distinct students behind the day's k-safe book-days."
    )


@strawberry.type(
    description="A book's engagement over its k-safe days in the range; null when it has none."
)
class BookEngagement:
    book: Book
    events: int | None
    peak_daily_students: int | None = strawberry.field(
        description="The most distinct students on one of its days (a lower bound of the range's)."
    )


@strawberry.type
class PublisherAnalytics:
    publisher_id: strawberry.ID
    from_: datetime | None = strawberry.field(name="from")
    to: datetime | None
    total_events: int | None = strawberry.field(
        description="Sum of the k-safe book-days in the range (the days shown); no count behind "
        "fewer than k students is in it."
    )
    timeline: list[EngagementPoint]
    books: list[BookEngagement] = strawberry.field(
        default_factory=list, description="The publisher's most engaged books (up to 20)."
    )
    k_anonymity: int = strawberry.field(
        default=5,
        description="A book's day drawn from fewer distinct students than this is in no number.",
    )
    suppressed_days: int = strawberry.field(
        default=0, description="Days in the range with engagement but no k-safe book-day."
    )
