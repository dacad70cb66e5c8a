"""Root fields for the ingestion log (the ingestion issue fills these in)."""

from __future__ import annotations

import strawberry

from bookbridge.app.errors import NotImplementedYet
from bookbridge.graphql_schema.context import Info
from bookbridge.graphql_schema.ingestion import IngestionBatch


async def ingestion_batch(info: Info, id: strawberry.ID) -> IngestionBatch | None:
    raise NotImplementedYet("ingestionBatch")
