"""Applies the Alembic migrations shipped inside the package."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

MIGRATIONS = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Migrate the database at `url` (blocking; runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    """Migrate from inside a running event loop (Alembic's env.py starts a loop of its own)."""
    await asyncio.to_thread(upgrade, url, revision)
