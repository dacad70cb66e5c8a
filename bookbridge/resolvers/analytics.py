"""Root fields for publisher analytics (the recommendation issue fills these in)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from bookbridge.app.errors import NotImplementedYet
from bookbridge.graphql_schema.analytics import PublisherAnalytics
from bookbridge.graphql_schema.context import Info
from bookbridge.resolvers.guards import require_publisher


async def publisher_analytics(
    info: Info,
    publisher_id: strawberry.ID,
    from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
    to: datetime | None = None,
) -> PublisherAnalytics:
    require_publisher(info, str(publisher_id))
    raise NotImplementedYet("publisherAnalytics")
