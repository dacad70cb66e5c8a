"""The write-side SQL of ingestion: one set-based statement per batch and table."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.reco import stored

Record = dict[str, Any]

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "publishers": (("id", "text"), ("name", "text")),
    "subjects": (("id", "text"), ("name", "text")),
    "grades": (("id", "text"), ("name", "text")),
    "categories": (("id", "text"), ("name", "text"), ("subject_id", "text"), ("parent_id", "text")),
    "topics": (
        ("id", "text"),
        ("label", "text"),
        ("subject_id", "text"),
        ("grade_id", "text"),
        ("category_id", "text"),
    ),
    "books": (
        ("id", "text"),
        ("publisher_id", "text"),
        ("title", "text"),
        ("description", "text"),
        ("tags", "text[]"),
        ("updated_at", "timestamptz"),
    ),
    "topic_book_mappings": (("topic_id", "text"), ("book_id", "text"), ("weight", "float8")),
    "study_sets": (
        ("id", "text"),
        ("user_id", "text"),
        ("subject_id", "text"),
        ("grade_id", "text"),
        ("title", "text"),
        ("created_at", "timestamptz"),
    ),
}
KEYS: dict[str, tuple[str, ...]] = {"topic_book_mappings": ("topic_id", "book_id")}


def _payload(records: Sequence[Record], columns: Sequence[str]) -> str:
    """The records as the JSON array `jsonb_to_recordset` reads: as they are when they hold
    these columns (the cleaned records of most entities do; a key it does not name is ignored
    and one it names but a record lacks is NULL either way), else only these columns."""
    if records and list(records[0]) == list(columns):
        return orjson.dumps(records).decode()
    return orjson.dumps([{c: r.get(c) for c in columns} for r in records]).decode()


def _upsert_sql(table: str) -> str:
    columns = COLUMNS[table]
    names = [c for c, _ in columns]
    keys = KEYS.get(table, ("id",))
    rest = [c for c in names if c not in keys]
    record_type = ", ".join(f"{c} {t}" for c, t in columns)
    order = ", ".join(f'{k} COLLATE "C"' for k in keys)
    assign = ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
    current = ", ".join(f"t.{c}" for c in rest)
    incoming = ", ".join(f"EXCLUDED.{c}" for c in rest)
    differs = f"ROW({current}) IS DISTINCT FROM ROW({incoming})"
    if table == "books":
        # updated_at is the source's version: an older version never overwrites a newer one.
        content = [c for c in rest if c != "updated_at"]
        same = ", ".join(f"t.{c}" for c in content)
        new = ", ".join(f"EXCLUDED.{c}" for c in content)
        differs = (
            "EXCLUDED.updated_at > t.updated_at OR (EXCLUDED.updated_at = t.updated_at "
            f"AND ROW({same}) IS DISTINCT FROM ROW({new}))"
        )
    return f"""
        WITH upserted AS (
            INSERT INTO {table} AS t ({", ".join(names)})
            SELECT {", ".join(names)}
            FROM jsonb_to_recordset(CAST(:payload AS jsonb)) AS r({record_type})
            ORDER BY {order}
            ON CONFLICT ({", ".join(keys)}) DO UPDATE SET {assign}, ingested_at = now()
            WHERE {differs}
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted) AS inserted,
               count(*) FILTER (WHERE NOT inserted) AS updated
        FROM upserted
    """


UPSERT_SQL = {table: text(_upsert_sql(table)) for table in COLUMNS}


async def upsert(conn: AsyncConnection, table: str, records: Sequence[Record]) -> tuple[int, int]:
    """Insert or update `records` (already deduplicated); return (inserted, updated)."""
    if not records:
        return 0, 0
    names = [c for c, _ in COLUMNS[table]]
    row = (await conn.execute(UPSERT_SQL[table], {"payload": _payload(records, names)})).one()
    return int(row.inserted), int(row.updated)


UPSERT_STUDY_SETS_IDS = text(
    _upsert_sql("study_sets")
    .split("SELECT count(*)")[0]
    .replace("RETURNING (xmax = 0) AS inserted", "RETURNING id, (xmax = 0) AS inserted")
    + " SELECT id, inserted FROM upserted"
)


async def upsert_study_sets(
    conn: AsyncConnection, records: Sequence[Record]
) -> tuple[set[str], set[str]]:
    """Like upsert, but return the ids (inserted, updated): topic changes count per study set.
    The caller forgets the updated sets' stored lists (`forget_lists`)."""
    if not records:
        return set(), set()
    names = [c for c, _ in COLUMNS["study_sets"]]
    rows = (await conn.execute(UPSERT_STUDY_SETS_IDS, {"payload": _payload(records, names)})).all()
    return {r.id for r in rows if r.inserted}, {r.id for r in rows if not r.inserted}


# A batch's stored-list tombstones (app/reco/stored.py): the sets' guard keys, then the
# tombstones, two statements (a statement's snapshot is taken before it waits for a key).
GUARD = text(stored.guard("SELECT unnest(CAST(:ids AS text[]))"))
TOMBSTONE = text(stored.tombstone("SELECT unnest(CAST(:ids AS text[]))"))


async def forget_lists(conn: AsyncConnection, ids: Collection[str]) -> None:
    """The stored lists of the study sets `ids`, which this batch changed, become tombstones,
    under the sets' guard keys held until the batch commits: a batch calls it once, after its
    changes to these sets (the keys are then held from here to the commit only)."""
    if ids:
        params = {"ids": sorted(ids)}
        await conn.execute(GUARD, params)
        await conn.execute(TOMBSTONE, params)


_MISSING: dict[str, Any] = {}


async def missing_ids(conn: AsyncConnection, table: str, ids: Sequence[str]) -> set[str]:
    """The ids of `ids` that `table` does not hold. Usually none: nothing comes back to
    unpack, where returning the ids found sent back (and made a row of) each one."""
    if not ids:
        return set()
    sql = _MISSING.get(table)
    if sql is None:
        # the ids as one JSON string: the driver encodes a list parameter element by element
        sql = _MISSING[table] = text(
            "WITH sent AS (SELECT jsonb_array_elements_text(CAST(:ids AS jsonb)) AS id) "
            "SELECT id FROM sent EXCEPT "
            f"SELECT id FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM sent))"
        )
    payload = orjson.dumps(list(ids)).decode()
    return {r.id for r in (await conn.execute(sql, {"ids": payload})).all()}


async def book_publishers(conn: AsyncConnection, book_ids: Sequence[str]) -> dict[str, str]:
    sql = text("SELECT id, publisher_id FROM books WHERE id = ANY(CAST(:ids AS text[]))")
    rows = (await conn.execute(sql, {"ids": list(book_ids)})).all()
    return {r.id: r.publisher_id for r in rows}


async def study_set_users(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, str]:
    sql = text("SELECT id, user_id FROM study_sets WHERE id = ANY(CAST(:ids AS text[]))")
    return {r.id: r.user_id for r in (await conn.execute(sql, {"ids": list(ids)})).all()}


async def study_set_topics(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[str]]:
    sql = text(
        "SELECT study_set_id, array_agg(topic_id ORDER BY topic_id) AS topics "
        "FROM study_set_topics WHERE study_set_id = ANY(CAST(:ids AS text[])) GROUP BY 1"
    )
    return {r.study_set_id: list(r.topics) for r in (await conn.execute(sql, {"ids": list(ids)}))}


async def replace_study_set_topics(conn: AsyncConnection, topics: dict[str, list[str]]) -> None:
    """Make each given study set's explicit topics exactly the given list (the caller forgets
    their stored lists: `forget_lists`)."""
    if not topics:
        return
    ids = sorted(topics)
    await conn.execute(
        text("DELETE FROM study_set_topics WHERE study_set_id = ANY(CAST(:ids AS text[]))"),
        {"ids": ids},
    )
    pairs = [{"s": sid, "t": tid} for sid in ids for tid in sorted(topics[sid])]
    if pairs:
        await conn.execute(
            text(
                "INSERT INTO study_set_topics (study_set_id, topic_id, source) "
                "SELECT s, t, 'explicit' FROM jsonb_to_recordset(CAST(:payload AS jsonb)) "
                "AS r(s text, t text)"
            ),
            {"payload": orjson.dumps(pairs).decode()},
        )


_DAILY = """
    {name} AS (
        INSERT INTO engagement_daily_{table} AS a (day, {key}, event_type, events)
        SELECT (occurred_at AT TIME ZONE 'UTC')::date, {key}, event_type, count(*)
        FROM new_events WHERE {key} IS NOT NULL
        GROUP BY 1, 2, 3 ORDER BY 1, {key} COLLATE "C", event_type
        ON CONFLICT (day, {key}, event_type) DO UPDATE SET events = a.events + EXCLUDED.events
        RETURNING 1
    )"""

INSERT_EVENTS = text(
    """
    WITH new_events AS (
        INSERT INTO engagement_events (id, study_set_id, event_type, occurred_at, book_id, topic_id)
        SELECT id, study_set_id, event_type, occurred_at, book_id, topic_id
        FROM jsonb_to_recordset(CAST(:payload AS jsonb)) AS r(
            id text, study_set_id text, event_type text, occurred_at timestamptz,
            book_id text, topic_id text)
        ORDER BY id COLLATE "C"
        ON CONFLICT (id) DO NOTHING
        RETURNING study_set_id, event_type, occurred_at, book_id, topic_id
    ),"""
    + ",".join(
        _DAILY.format(name=f"daily_{t}", table=t, key=f"{t}_id")
        for t in ("book", "topic", "study_set")
    )
    # and the study sets with new events, whose stored lists become tombstones (`forget_lists`)
    + "\n    SELECT count(*) AS inserted,"
    + " array_agg(DISTINCT study_set_id) FILTER (WHERE study_set_id IS NOT NULL) AS sets"
    + " FROM new_events"
)


async def insert_events(conn: AsyncConnection, records: Sequence[Record]) -> int:
    """Insert new events (known ids are skipped) and add exactly those to the daily aggregates;
    the stored lists of their study sets become tombstones."""
    if not records:
        return 0
    names = ("id", "study_set_id", "event_type", "occurred_at", "book_id", "topic_id")
    row = (await conn.execute(INSERT_EVENTS, {"payload": _payload(records, names)})).one()
    await forget_lists(conn, row.sets or ())
    return int(row.inserted)


async def lock_idempotency_key(conn: AsyncConnection, entity: str, key: str) -> None:
    """Serialise requests that share a key until this transaction ends."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"{entity}\x1f{key}"}
    )


async def find_batch(conn: AsyncConnection, entity: str, key: str) -> Any:
    sql = text(
        "SELECT id, payload_hash, result FROM ingestion_batches "
        "WHERE entity = :entity AND idempotency_key = :key"
    )
    return (await conn.execute(sql, {"entity": entity, "key": key})).one_or_none()


async def insert_batch(conn: AsyncConnection, row: Record) -> None:
    await conn.execute(
        text(
            "INSERT INTO ingestion_batches (id, entity, idempotency_key, payload_hash, status, "
            "received, inserted, updated, unchanged, duplicates, rejected, result, client, "
            "started_at, duration_ms) VALUES (:id, :entity, :idempotency_key, :payload_hash, "
            ":status, :received, :inserted, :updated, :unchanged, :duplicates, :rejected, "
            "CAST(:result AS jsonb), :client, :started_at, :duration_ms)"
        ),
        row | {"result": orjson.dumps(row["result"]).decode()},
    )


async def insert_dead_letters(conn: AsyncConnection, rows: Sequence[Record]) -> None:
    if not rows:
        return
    await conn.execute(
        text(
            "INSERT INTO dead_letters (batch_id, entity, record_index, record_id, user_id, reason, "
            "payload) SELECT batch_id, entity, record_index, record_id, user_id, reason, payload "
            "FROM jsonb_to_recordset(CAST(:payload AS jsonb)) AS r(batch_id text, entity text, "
            "record_index int, record_id text, user_id text, reason text, payload jsonb)"
        ),
        {"payload": orjson.dumps(list(rows), default=str).decode()},
    )
