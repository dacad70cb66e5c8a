"""Root fields for publisher analytics (the recommendation issue fills these in)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from bookbridge.app.errors import NotImplementedYet
from bookbridge.graphql_schema.analytics import PublisherAnalytics
from bookbridge.graphql_schema.context import Info


async def publisher_analytics(
    info: Info,
    publisher_id: strawberry.ID,
    from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
    to: datetime | None = None,
) -> PublisherAnalytics:
    raise NotImplementedYet("publisherAnalytics")
