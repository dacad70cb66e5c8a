"""Plain factory functions that write canonical rows straight to the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from app.db import models
from app.runtime.services import Services

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def insert_rows(
    services: Services, model: type[models.Base], rows: list[dict[str, Any]]
) -> None:
    if rows:
        async with services.engine.begin() as conn:
            await conn.execute(insert(model), rows)


async def catalog(
    services: Services, books: int = 10, publishers: int = 2, topics: int = 3
) -> None:
    """A small catalog: subjects/grades, topics, books spread over publishers, every book mapped."""
    await insert_rows(
        services, models.Subject, [{"id": "s1", "name": "Science"}, {"id": "s2", "name": "History"}]
    )
    await insert_rows(
        services, models.Grade, [{"id": "g1", "name": "Grade 1"}, {"id": "g2", "name": "Grade 2"}]
    )
    await insert_rows(
        services,
        models.Category,
        [
            {"id": "c1", "name": "Natural sciences", "subject_id": "s1", "parent_id": None},
            {"id": "c1a", "name": "Biology", "subject_id": "s1", "parent_id": "c1"},
            {"id": "c1b", "name": "Physics", "subject_id": "s1", "parent_id": "c1"},
        ],
    )
    await insert_rows(
        services,
        models.Publisher,
        [{"id": f"p{i}", "name": f"Publisher {i}"} for i in range(publishers)],
    )
    await insert_rows(
        services,
        models.Topic,
        [
            {
                "id": f"t{i}",
                "label": f"Topic {i}",
                "subject_id": "s1" if i % 2 == 0 else "s2",
                "grade_id": "g1" if i % 2 == 0 else "g2",
                "category_id": "c1a" if i == 0 else None,
            }
            for i in range(topics)
        ],
    )
    await insert_rows(
        services,
        models.Book,
        [
            {
                "id": f"b{i:04d}",
                "publisher_id": f"p{i % publishers}",
                "title": f"Book {i}",
                "description": f"About topic {i % topics}",
                "tags": [f"tag{i % 5}"],
                "updated_at": T0,
            }
            for i in range(books)
        ],
    )
    await insert_rows(
        services,
        models.TopicBookMapping,
        [
            {
                "topic_id": f"t{t}",
                "book_id": f"b{i:04d}",
                "weight": round(1.0 / (1 + (i + t) % 7), 4),
            }
            for i in range(books)
            for t in range(topics)
            if (i + t) % 2 == 0 or t == i % topics
        ],
    )
