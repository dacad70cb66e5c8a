"""Publisher analytics: aggregates of engagement with a publisher's books, never per student."""

from __future__ import annotations

from datetime import date, datetime

import strawberry


@strawberry.type(description="Engagement of one day; counts from fewer than k students are null.")
class EngagementPoint:
    day: date
    events: int | None
    students: int | None


@strawberry.type
class PublisherAnalytics:
    publisher_id: strawberry.ID
    from_: datetime | None = strawberry.field(name="from")
    to: datetime | None
    total_events: int | None
    timeline: list[EngagementPoint]
