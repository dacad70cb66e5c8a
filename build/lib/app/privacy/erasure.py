"""deleteStudentData: erase a student from PostgreSQL (one transaction), Redis and local caches."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.db.erasure import erase_student
from app.runtime.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Erasure:
    study_sets: int
    events: int
    dead_letters: int
    ingestion_log_entries: int
    other_rows: int
    cache_entries: int


def _glob(value: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in value)


async def erase(services: Services, user_id: str) -> Erasure:
    async with services.engine.begin() as conn:
        counts, set_ids = await erase_student(conn, user_id)
    cache_entries = 0
    if services.redis is not None:
        try:
            for identity in (user_id, *set_ids):
                keys = [k async for k in services.redis.scan_iter(f"*{_glob(identity)}*", 500)]
                if keys:
                    cache_entries += int(await services.redis.delete(*keys))
        except RedisError as exc:  # the database part is done; say the cache part is not
            log.error("erasure: Redis cleanup failed: %s", exc)
            raise
    reco_cache = getattr(services, "reco_cache", None)
    if reco_cache is not None:
        reco_cache.clear_local()
    named = {"study_sets", "engagement_events", "dead_letters", "ingestion_batches"}
    log.info("erasure done", extra={"tables": {k: v for k, v in counts.items() if v}})
    return Erasure(
        study_sets=counts.get("study_sets", 0),
        events=counts.get("engagement_events", 0),
        dead_letters=counts.get("dead_letters", 0),
        ingestion_log_entries=counts.get("ingestion_batches", 0),
        other_rows=sum(v for k, v in counts.items() if k not in named),
        cache_entries=cache_entries,
    )
