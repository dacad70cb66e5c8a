"""Factories for recommendation tests: a tiny catalog, study sets, events and aggregates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.db import models
from app.runtime.services import Services
from tests.factories import insert_rows

TODAY = datetime.now(UTC).date()
NOW = datetime.now(UTC)


async def taxonomy(services: Services) -> None:
    await insert_rows(services, models.Subject, [{"id": "s1", "name": "Biology"}])
    await insert_rows(services, models.Grade, [{"id": "g1", "name": "Grade 7"}])
    await insert_rows(
        services, models.Publisher, [{"id": "p1", "name": "Acme"}, {"id": "p2", "name": "Other"}]
    )
    await insert_rows(
        services,
        models.Topic,
        [
            {"id": "t1", "label": "Photosynthesis", "subject_id": "s1", "grade_id": "g1"},
            {"id": "t2", "label": "Cell structure", "subject_id": "s1", "grade_id": "g1"},
        ],
    )


async def books(
    services: Services, specs: dict[str, dict[str, float]], publisher: str = "p1"
) -> None:
    """specs: book id -> {topic id: weight}."""
    await insert_rows(
        services,
        models.Book,
        [
            {
                "id": b,
                "publisher_id": publisher,
                "title": f"Title of {b}",
                "description": None,
                "tags": [],
                "updated_at": NOW,
            }
            for b in specs
        ],
    )
    rows = [
        {"topic_id": t, "book_id": b, "weight": w} for b, ws in specs.items() for t, w in ws.items()
    ]
    await insert_rows(services, models.TopicBookMapping, rows)


async def study_set(
    services: Services,
    sid: str,
    user: str,
    topics: list[str],
    title: str = "My set",
    subject: str | None = "s1",
) -> None:
    await insert_rows(
        services,
        models.StudySet,
        [
            {
                "id": sid,
                "user_id": user,
                "subject_id": subject,
                "grade_id": "g1",
                "title": title,
                "created_at": NOW,
            }
        ],
    )
    await insert_rows(
        services, models.StudySetTopic, [{"study_set_id": sid, "topic_id": t} for t in topics]
    )


async def daily_book(
    services: Services, book: str, events: int, days_ago: int, event_type: str = "view"
) -> None:
    await insert_rows(
        services,
        models.EngagementDailyBook,
        [
            {
                "book_id": book,
                "day": TODAY - timedelta(days=days_ago),
                "event_type": event_type,
                "events": events,
            }
        ],
    )


_seq = iter(range(10**9))


async def events(
    services: Services,
    study_set_id: str,
    book_ids: list[str],
    event_type: str = "view",
    at: datetime | None = None,
    **extra: Any,
) -> list[str]:
    ids = [f"e{next(_seq)}" for _ in book_ids]
    await insert_rows(
        services,
        models.EngagementEvent,
        [
            {
                "id": i,
                "study_set_id": study_set_id,
                "event_type": event_type,
                "occurred_at": at or NOW,
                "book_id": b,
                "topic_id": extra.get("topic_id"),
            }
            for i, b in zip(ids, book_ids, strict=True)
        ],
    )
    return ids


def day(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


def event_record(
    event_id: str, study_set_id: str, book_id: str, at: datetime, topic_id: str | None = None
) -> dict[str, Any]:
    """One recordEngagementEvents record (for tests that go through ingestion)."""
    record = {
        "id": event_id,
        "studySetId": study_set_id,
        "eventType": "view",
        "occurredAt": at.isoformat(),
        "bookId": book_id,
    }
    return record | ({"topicId": topic_id} if topic_id else {})


async def analytics_rows(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the three analytics aggregates, in a stable order."""
    out = {}
    async with services.engine.connect() as conn:
        for name in ("publisher", "book", "topic"):
            rows = await conn.execute(text(f"SELECT * FROM analytics_daily_{name} ORDER BY 1, 2"))
            out[name] = [tuple(r) for r in rows]
    return out
