"""Data access: SQLAlchemy models, the engine, and one module of queries per domain."""
