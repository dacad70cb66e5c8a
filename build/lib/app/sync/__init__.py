"""The bookbridge sync client: push JSONL/CSV files or records to the ingestion mutations."""

from app.sync.client import (
    BatchFailed,
    BatchResult,
    RecordError,
    SyncClient,
    SyncSummary,
    batch_key,
)
from app.sync.entities import ENTITIES, entity
from app.sync.retry import RetryPolicy

__all__ = [
    "ENTITIES",
    "BatchFailed",
    "BatchResult",
    "RecordError",
    "RetryPolicy",
    "SyncClient",
    "SyncSummary",
    "batch_key",
    "entity",
]
