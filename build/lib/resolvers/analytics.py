"""Root fields for publisher analytics: aggregates only, with the k-anonymity threshold."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.reco.analytics import publisher_report
from graphql_schema.types.analytics import BookEngagement, EngagementPoint, PublisherAnalytics
from graphql_schema.types.catalog import Book
from graphql_schema.types.context import Info
from resolvers.guards import require_publisher


async def publisher_analytics(
    info: Info,
    publisher_id: strawberry.ID,
    from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
    to: datetime | None = None,
) -> PublisherAnalytics:
    require_publisher(info, str(publisher_id))
    k = info.context.services.settings.reco.k_anonymity
    async with info.context.services.read_engine.connect() as conn:
        report = await publisher_report(conn, str(publisher_id), from_, to, k)
    rows = await info.context.loaders.book_by_id.load_many([b.book_id for b in report.books])
    return PublisherAnalytics(
        publisher_id=publisher_id,
        from_=from_,
        to=to,
        total_events=report.total_events,
        timeline=[
            EngagementPoint(day=p.day, events=p.events, students=p.students)
            for p in report.timeline
        ],
        books=[
            BookEngagement(
                book=Book.from_row(row), events=b.events, peak_daily_students=b.peak_daily_students
            )
            for b, row in zip(report.books, rows, strict=True)
            if row is not None
        ],
        k_anonymity=k,
        suppressed_days=report.suppressed_days,
    )
