"""Applies one ingestion batch: validate, deduplicate, upsert in one transaction, log, dead-letter."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.errors import ClientError
from app.ingest import notify, sql
from app.ingest.specs import SPECS, EntitySpec, Record
from app.ingest.validate import RecordInvalid, escaped, storable
from app.observability import metrics

log = logging.getLogger("bookbridge.ingest")

MAX_BATCH = 10_000
MAX_KEY = 200
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
MAX_ATTEMPTS = 6


class BatchTooLarge(ClientError):
    code = "BATCH_TOO_LARGE"


class IdempotencyConflict(ClientError):
    code = "IDEMPOTENCY_KEY_REUSED"


@dataclass(frozen=True, slots=True)
class RecordError:
    index: int
    id: str | None
    reason: str


@dataclass(slots=True)
class BatchOutcome:
    batch_id: str
    entity: str
    replayed: bool = False
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: list[RecordError] = field(default_factory=list)
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchOutcome:
        rejected = [RecordError(**r) for r in data.pop("rejected", [])]
        return cls(**data, rejected=rejected)


def payload_hash(entity: str, records: Sequence[Record]) -> str:
    body = orjson.dumps([entity, list(records)], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(body).hexdigest()


async def ingest(
    engine: AsyncEngine,
    entity: str,
    records: Sequence[Record],
    idempotency_key: str | None = None,
    *,
    publisher_scope: str | None = None,
    client: str | None = None,
) -> BatchOutcome:
    """Apply one batch. Valid records are applied together or not at all; invalid ones are
    returned (and dead-lettered); a known idempotency key replays the stored outcome."""
    spec = SPECS[entity]
    if len(records) > MAX_BATCH:
        raise BatchTooLarge(f"a batch holds at most {MAX_BATCH} records (got {len(records)})")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_KEY):
        raise ClientError(f"idempotencyKey must be 1 to {MAX_KEY} characters")
    if idempotency_key is not None and not storable(idempotency_key):
        raise ClientError("idempotencyKey must not contain NUL or unpaired surrogate characters")
    digest = payload_hash(entity, records)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with engine.begin() as conn:
                return await _apply(
                    conn, spec, records, idempotency_key, digest, publisher_scope, client
                )
        except DBAPIError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            if state not in RETRYABLE_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
            delay = random.uniform(0, 0.05 * 2**attempt)
            log.warning("ingest %s: %s, retry %d in %.3fs", entity, state, attempt, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def apply_batch(
    engine: AsyncEngine,
    listeners: Sequence[notify.Listener],
    entity: str,
    records: Sequence[Record],
    idempotency_key: str | None = None,
    *,
    publisher_scope: str | None = None,
    client: str | None = None,
) -> BatchOutcome:
    """One batch as the API applies it: `ingest`, then its after-commit effects (metrics, caches)."""
    try:
        outcome = await ingest(
            engine, entity, records, idempotency_key, publisher_scope=publisher_scope, client=client
        )
    except ClientError:  # the caller's mistake (too large, key reused): refused, not failed
        metrics.record_batch(entity, "refused", {})
        raise
    except Exception:
        metrics.record_batch(entity, "failed", {})
        raise
    metrics.record_batch(
        entity,
        "replayed" if outcome.replayed else ("partial" if outcome.rejected else "applied"),
        {
            "inserted": outcome.inserted,
            "updated": outcome.updated,
            "unchanged": outcome.unchanged,
            "duplicates": outcome.duplicates,
            "rejected": len(outcome.rejected),
        },
    )
    event = notify.applied(entity, outcome.inserted, outcome.updated, records)
    await notify.publish(engine, listeners, event)
    return outcome


async def _apply(
    conn: AsyncConnection,
    spec: EntitySpec,
    records: Sequence[Record],
    key: str | None,
    digest: str,
    publisher_scope: str | None,
    client: str | None,
) -> BatchOutcome:
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    if key is not None:
        await sql.lock_idempotency_key(conn, spec.name, key)
        stored = await sql.find_batch(conn, spec.name, key)
        if stored is not None:
            if stored.payload_hash != digest:
                raise IdempotencyConflict(
                    "idempotencyKey was already used with a different payload"
                )
            outcome = BatchOutcome.from_json(dict(stored.result))
            outcome.replayed = True
            return outcome
    outcome = BatchOutcome(batch_id=str(uuid.uuid4()), entity=spec.name, received=len(records))
    dead: list[Record] = []
    positions: dict[tuple[str, ...], int] = {}
    valid = _clean_and_dedupe(spec, records, outcome, dead, positions)
    valid = await _check_references(
        conn, spec, records, valid, positions, outcome, dead, publisher_scope
    )
    await _write(conn, spec, valid, outcome)
    outcome.rejected.sort(key=lambda e: e.index)
    await _dead_letter(conn, spec, outcome.batch_id, dead)
    outcome.duration_ms = round((time.perf_counter() - started) * 1000, 3)
    await sql.insert_batch(
        conn,
        {
            "id": outcome.batch_id,
            "entity": spec.name,
            "idempotency_key": key,
            "payload_hash": digest,
            "status": "applied" if not outcome.rejected else "applied_with_rejections",
            "received": outcome.received,
            "inserted": outcome.inserted,
            "updated": outcome.updated,
            "unchanged": outcome.unchanged,
            "duplicates": outcome.duplicates,
            "rejected": len(outcome.rejected),
            "result": outcome.to_json(),
            "client": client,
            "started_at": started_at,
            "duration_ms": outcome.duration_ms,
        },
    )
    return outcome


def _clean_and_dedupe(
    spec: EntitySpec,
    records: Sequence[Record],
    outcome: BatchOutcome,
    dead: list[Record],
    positions: dict[tuple[str, ...], int],
) -> dict[tuple[str, ...], Record]:
    """Clean each record; for a key repeated in the batch the last one wins. `positions` gets
    each kept record's index in the batch (the cleaned records hold their columns only: they
    are the statement's payload as they are)."""
    valid: dict[tuple[str, ...], Record] = {}
    for index, record in enumerate(records):
        try:
            cleaned = spec.clean(record)
        except RecordInvalid as exc:
            _reject(outcome, dead, index, record, str(exc))
            continue
        key = spec.key(cleaned)
        if key in valid:
            outcome.duplicates += 1
            del valid[key]  # re-insert so the dict keeps the last occurrence's position
        valid[key] = cleaned
        positions[key] = index
    return valid


def _reject(
    outcome: BatchOutcome, dead: list[Record], index: int, record: Record, reason: str
) -> None:
    raw_id = record.get("id")
    # stored in the batch log and the dead letters: in a form PostgreSQL accepts
    record_id = str(escaped(raw_id)) if isinstance(raw_id, str) else None
    outcome.rejected.append(RecordError(index=index, id=record_id, reason=reason))
    dead.append({"index": index, "id": record_id, "reason": reason, "payload": escaped(record)})


async def _check_references(
    conn: AsyncConnection,
    spec: EntitySpec,
    records: Sequence[Record],
    valid: dict[tuple[str, ...], Record],
    positions: dict[tuple[str, ...], int],
    outcome: BatchOutcome,
    dead: list[Record],
    publisher_scope: str | None,
) -> dict[tuple[str, ...], Record]:
    problems: dict[tuple[str, ...], str] = {}
    if publisher_scope is not None:  # first: whether others' ids exist is none of its business
        await _check_publisher_scope(conn, spec, valid, problems, publisher_scope)
    for ref in spec.references:
        wanted = {r[ref.field] for r in valid.values() if r.get(ref.field) is not None}
        if not wanted:
            continue
        unknown = await sql.missing_ids(conn, ref.table, sorted(wanted))
        if ref.in_batch:
            unknown -= {r["id"] for r in valid.values()}
        if not unknown:
            continue
        for key, record in valid.items():
            value = record.get(ref.field)
            if value is not None and value in unknown and key not in problems:
                problems[key] = _unknown(ref.camel, value, publisher_scope)
    if spec.name == "study_sets":
        await _check_topic_lists(conn, valid, problems)
    for key, reason in problems.items():
        del valid[key]
        index = positions[key]
        _reject(outcome, dead, index, records[index], reason)  # dead letters keep what was sent
    return valid


def _unknown(camel: str, value: str, publisher_scope: str | None) -> str:
    if publisher_scope is not None and camel == "studySetId":
        # a publisher's key reads no study sets: it is not told which ids exist
        return f"studySetId '{value}' is not a study set this key may write events to"
    return f"{camel} '{value}' does not exist"


async def _check_topic_lists(
    conn: AsyncConnection,
    valid: dict[tuple[str, ...], Record],
    problems: dict[tuple[str, ...], str],
) -> None:
    wanted = {t for r in valid.values() for t in (r.get("topic_ids") or [])}
    unknown = await sql.missing_ids(conn, "topics", sorted(wanted)) if wanted else set()
    if not unknown:
        return
    for key, record in valid.items():
        missing = [t for t in (record.get("topic_ids") or []) if t in unknown]
        if missing and key not in problems:
            problems[key] = f"topicIds: topic '{missing[0]}' does not exist"


async def _check_publisher_scope(
    conn: AsyncConnection,
    spec: EntitySpec,
    valid: dict[tuple[str, ...], Record],
    problems: dict[tuple[str, ...], str],
    scope: str,
) -> None:
    """A key bound to a publisher writes only that publisher's records (events: only events
    on that publisher's books)."""
    owners: dict[str, str] = {}
    if spec.name in ("topic_book_mappings", "engagement_events"):
        books = {r["book_id"] for r in valid.values() if r.get("book_id") is not None}
        owners = await sql.book_publishers(conn, sorted(books))
    elif spec.name == "books":
        owners = await sql.book_publishers(conn, sorted({r["id"] for r in valid.values()}))
    for key, record in valid.items():
        if spec.name == "publishers":
            owner = record["id"]
        elif spec.name == "books":
            owner = record["publisher_id"]
            stored = owners.get(record["id"])
            if stored is not None and stored != scope:
                owner = stored
        elif spec.name == "topic_book_mappings":
            owner = owners.get(record["book_id"], scope)
        elif spec.name == "engagement_events":
            owner = owners.get(record.get("book_id") or "", "")
        else:
            continue
        if owner != scope and key not in problems:
            problems[key] = f"forbidden: this key may only write records of publisher '{scope}'"


async def _write(
    conn: AsyncConnection,
    spec: EntitySpec,
    valid: dict[tuple[str, ...], Record],
    outcome: BatchOutcome,
) -> None:
    records = list(valid.values())
    if spec.name == "engagement_events":
        inserted = await sql.insert_events(conn, records)
        outcome.inserted = inserted
        outcome.duplicates += len(records) - inserted
        return
    if spec.name == "study_sets":
        inserted_ids, updated_ids = await sql.upsert_study_sets(conn, records)
        updated_ids |= await _write_study_set_topics(conn, records)
        await sql.forget_lists(conn, updated_ids - inserted_ids)  # once: one set of guard keys
        outcome.inserted, outcome.updated = len(inserted_ids), len(updated_ids - inserted_ids)
    else:
        outcome.inserted, outcome.updated = await sql.upsert(conn, spec.table, records)
    outcome.unchanged = len(records) - outcome.inserted - outcome.updated


async def _write_study_set_topics(conn: AsyncConnection, records: list[Record]) -> set[str]:
    """Replace the explicit topic lists that changed; return those study sets' ids."""
    sent = {r["id"]: sorted(r["topic_ids"]) for r in records if r.get("topic_ids") is not None}
    if not sent:
        return set()
    stored = await sql.study_set_topics(conn, sorted(sent))
    changed = {sid: topics for sid, topics in sent.items() if stored.get(sid, []) != topics}
    await sql.replace_study_set_topics(conn, changed)
    return set(changed)


async def _dead_letter(
    conn: AsyncConnection, spec: EntitySpec, batch_id: str, dead: list[Record]
) -> None:
    if not dead:
        return
    users: dict[str, str] = {}
    if spec.name == "engagement_events":
        ids = sorted({d["payload"].get("study_set_id") for d in dead} - {None})
        users = await sql.study_set_users(conn, [i for i in ids if isinstance(i, str)])
    rows = []
    for d in dead:
        payload = d["payload"]
        user = payload.get("user_id") if spec.name == "study_sets" else None
        if spec.name == "engagement_events":
            user = users.get(payload.get("study_set_id"))
        rows.append(
            {
                "batch_id": batch_id,
                "entity": spec.name,
                "record_index": d["index"],
                "record_id": d["id"],
                "user_id": user if isinstance(user, str) else None,
                "reason": d["reason"],
                "payload": payload,
            }
        )
    await sql.insert_dead_letters(conn, rows)
