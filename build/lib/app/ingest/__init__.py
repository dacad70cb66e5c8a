"""Batched, idempotent ingestion: validation, set-based upserts, the batch log and dead letters."""
