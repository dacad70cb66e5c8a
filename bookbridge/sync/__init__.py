"""The bookbridge sync client: push JSONL/CSV files or records to the ingestion mutations."""

from bookbridge.sync.client import (
    BatchFailed,
    BatchResult,
    RecordError,
    SyncClient,
    SyncSummary,
    batch_key,
)
from bookbridge.sync.entities import ENTITIES, entity
from bookbridge.sync.retry import RetryPolicy

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
