"""Applies the Alembic migrations shipped inside the package, and says where a database stands."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import migrations
from app.core.settings import Settings, normalize_database_url

MIGRATIONS = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def scripts() -> ScriptDirectory:
    """The shipped revisions (no database needed)."""
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` (blocking; runs its own event loop). "head" (not "heads"):
    the history has one head, and a second one fails here instead of migrating half-way."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Migrate from inside a running event loop (Alembic's env.py starts a loop of its own)."""
    await asyncio.to_thread(upgrade, url, revision)


@dataclass(frozen=True, slots=True)
class Status:
    current: tuple[str, ...]  # revisions recorded in the database (empty: never migrated)
    pending: tuple[tuple[str, str], ...]  # (revision, first docstring line), oldest first
    heads: tuple[str, ...]  # heads of the shipped history

    def lines(self) -> list[str]:
        out = [f"current: {', '.join(self.current) or '(none: not migrated)'}"]
        out.append(f"head:    {', '.join(self.heads)}")
        if not self.pending:
            out.append("pending: none (up to date)")
        else:
            out.append(f"pending: {len(self.pending)}")
            out.extend(f"  {rev}  {doc}" for rev, doc in self.pending)
        return out


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


async def current_revisions(url: str) -> tuple[str, ...]:
    engine = create_async_engine(normalize_database_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_heads)
    finally:
        await engine.dispose()


def pending_revisions(current: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Shipped revisions that neither `current` nor any of its ancestors name, oldest first."""
    script = scripts()
    applied: set[str] = set()
    for rev in current:
        applied.update(r.revision for r in script.iterate_revisions(rev, "base"))
    left = sorted(
        (r for r in script.walk_revisions() if r.revision not in applied), key=lambda r: r.revision
    )
    ordered: list[Script] = []
    while left:  # parents first; among the ready ones, the lowest revision id first
        ready = next(r for r in left if not _parents(r) - applied)
        ordered.append(ready)
        applied.add(ready.revision)
        left.remove(ready)
    return tuple((r.revision, (r.doc or "").splitlines()[0]) for r in ordered)


def _parents(script: Script) -> set[str]:
    down = script.down_revision
    return {down} if isinstance(down, str) else set(down or ())


def status(url: str) -> Status:
    """Where the database at `url` stands against the shipped migrations (blocking)."""
    current = asyncio.run(current_revisions(url))
    return Status(current, pending_revisions(current), tuple(scripts().get_heads()))


def unmigrated_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server's (started, not migrated): what `--status` reads."""
    if settings.database_url:
        return normalize_database_url(settings.database_url)
    from app.db.embedded import embedded_database_url

    return normalize_database_url(embedded_database_url(settings.data_dir))
