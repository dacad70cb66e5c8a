"""What an applied batch tells the rest of the service after its commit: caches listen here."""

from __future__ import annotations

import logging
import os
import secrets
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("bookbridge.ingest")

CATALOG_CHANNEL = "bookbridge_catalog"  # PostgreSQL NOTIFY channel: the catalog changed
# marks this process's own notifications: the pid tells forked workers apart, the random part
# replicas on other hosts (a container's process is often pid 1 on each of them)
_BOOT = secrets.token_hex(6)
CATALOG_ENTITIES = frozenset(
    {"publishers", "subjects", "grades", "categories", "topics", "books", "topic_book_mappings"}
)


@dataclass(frozen=True, slots=True)
class BatchApplied:
    """One committed batch, as the caches need to know it."""

    entity: str
    changed: int  # records inserted or updated
    study_set_ids: tuple[str, ...]  # study sets whose recommendations the batch changed

    @property
    def catalog(self) -> bool:
        return self.entity in CATALOG_ENTITIES and self.changed > 0


Listener = Callable[[BatchApplied], Awaitable[None]]


class CatalogWatcher(Protocol):
    def catalog_changed(self) -> None: ...


_WATCHERS: weakref.WeakSet[CatalogWatcher] = weakref.WeakSet()


def watch_catalog(watcher: CatalogWatcher) -> None:
    """Call `watcher.catalog_changed()` after every batch of this process that changed the
    catalog (held weakly); other processes hear of it on CATALOG_CHANNEL."""
    _WATCHERS.add(watcher)


def applied(
    entity: str, inserted: int, updated: int, records: Sequence[dict[str, object]]
) -> BatchApplied:
    """The event of a batch: which study sets' recommendations new engagement or topics changed."""
    touched: set[str] = set()
    if entity == "study_sets" and updated:
        touched = {str(r.get("id")) for r in records}
    elif entity == "engagement_events" and inserted:
        touched = {str(r.get("study_set_id")) for r in records}
    return BatchApplied(entity, inserted + updated, tuple(sorted(touched)))


def sender() -> str:
    """This process's mark, the second word of each catalog notification it sends."""
    return f"{os.getpid()}.{_BOOT}"


def sent_here(payload: str) -> bool:
    """True for a notification this process sent: its watchers were told at commit already
    (`publish`), so hearing it again would only empty their caches a second time."""
    return payload.endswith(" " + sender())


async def publish(engine: AsyncEngine, listeners: Sequence[Listener], event: BatchApplied) -> None:
    """Tell this process's listeners and catalog watchers, then every other process (NOTIFY).

    The NOTIFY goes on a pooled connection's driver directly, an invisible extra to the
    statement counts of the batch; a failure is logged: cached entries then expire by TTL.
    """
    for listener in listeners:
        await listener(event)
    if not event.catalog:
        return
    for watcher in list(_WATCHERS):
        watcher.catalog_changed()
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute(  # type: ignore[union-attr]
                "SELECT pg_notify($1, $2)", CATALOG_CHANNEL, f"{event.entity} {sender()}"
            )
    except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
        log.error("catalog change not announced (cached responses expire by TTL): %s", exc)
