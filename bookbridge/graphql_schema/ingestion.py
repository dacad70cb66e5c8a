"""The ingestion log: one entry per applied batch."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(description="One applied ingestion batch and what it did.")
class IngestionBatch:
    id: strawberry.ID
    entity: str
    status: str
    received: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    rejected: int
    started_at: datetime
    duration_ms: float
