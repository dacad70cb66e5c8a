"""Where an evaluation runs: a fresh scratch database (dropped afterwards) or a given one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.settings import Settings, normalize_database_url
from app.db.migrate import upgrade_async
from app.runtime.services import Services

SCRATCH = "bookbridge_eval"


async def run_in_database(
    directory: Path,
    database_url: str | None,
    keep: bool = False,
    sample: int | None = None,
    reuse: bool = False,
    server_url: str | None = None,
) -> dict[str, Any]:
    """Evaluate in `database_url`, or else in a fresh scratch database on `server_url`'s server."""
    from app.evaluate.run import evaluate

    settings = Settings()
    scratch = database_url is None
    if scratch:
        if server_url is None:
            raise ValueError("a scratch evaluation needs the server's URL")
        server = make_url(normalize_database_url(server_url))
        url = server.set(database=SCRATCH).render_as_string(hide_password=False)
        await _recreate(server.set(database="postgres").render_as_string(hide_password=False))
    else:
        url = normalize_database_url(str(database_url))
    await upgrade_async(url)
    services = Services.create(settings.model_copy(update={"database_url": url, "redis_url": None}))
    try:
        return await evaluate(services, directory, sample=sample, reuse=reuse and not scratch)
    finally:
        await services.close()
        if scratch and not keep:
            await _drop(server.set(database="postgres").render_as_string(hide_password=False))


async def _recreate(admin_url: str) -> None:
    await _drop(admin_url)
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{SCRATCH}"'))
    await engine.dispose()


async def _drop(admin_url: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
    await engine.dispose()
