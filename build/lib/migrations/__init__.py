"""Alembic migrations of the canonical model."""
