"""A small catalog full of edge cases for the compiled read path's differential tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db import models
from app.runtime.services import Services
from tests import factories

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# floats whose JSON text differs between PostgreSQL and orjson unless rendered with care
WEIGHTS = [1.0, 0.5, 1e-05, 3.5e-05, 1e-07, 0.30000000000000004, 123.0, 1e14, 2.5e14, 4e-10]
WEIGHTS += [123456789.125, 0.0, 7.0, 0.5, 0.25, 0.1, 2 / 3, 99999.99, 1e-4, 0.5]
STRINGS = ['He said "hi"', "back\\slash", "tab\there", "line\nbreak", "\x01\x1f\x7f", "été ☃ 𝄞"]
WORDS = ["garden", "wizard", "school", "ocean", "rocket", "magic"]


async def seed(services: Services) -> None:
    await factories.insert_rows(
        services,
        models.Subject,
        [{"id": "s1", "name": "Science"}, {"id": "s2", "name": STRINGS[0]}],
    )
    await factories.insert_rows(
        services, models.Grade, [{"id": "g1", "name": "Grade 1"}, {"id": "g2", "name": STRINGS[1]}]
    )
    await factories.insert_rows(
        services,
        models.Category,
        [
            {"id": "c1", "name": "Natural sciences", "subject_id": "s1", "parent_id": None},
            {"id": "c1a", "name": "Biology", "subject_id": "s1", "parent_id": "c1"},
            {"id": "c1b", "name": STRINGS[2], "subject_id": None, "parent_id": "c1"},
            {"id": "c2", "name": "Lonely", "subject_id": "s2", "parent_id": None},
        ],
    )
    await factories.insert_rows(
        services,
        models.Publisher,
        [{"id": f"p{i}", "name": f"{STRINGS[i % len(STRINGS)]} {i}"} for i in range(5)],
    )
    labels = ["Topic 0", "100% sure", "under_score", "back\\slash", "Garden Topic", "t5"]
    await factories.insert_rows(
        services,
        models.Topic,
        [
            {
                "id": f"t{i}",
                "label": labels[i],
                "subject_id": [None, "s1", "s2"][i % 3],
                "grade_id": ["g1", None, "g2"][i % 3],
                "category_id": ["c1a", None, "c1b", "c1", None, None][i],
            }
            for i in range(6)
        ],
    )
    books = []
    for i in range(40):
        words = " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 1 + i % 3))
        books.append(
            {
                "id": f"b{i:03d}",
                "publisher_id": f"p{i % 4}",  # p4 has no books
                "title": f"{words.title()} {STRINGS[i % len(STRINGS)]} {i}",
                "description": None if i % 5 == 0 else f"About {WORDS[i % len(WORDS)]} {i}",
                "tags": [] if i % 4 == 0 else [WORDS[i % len(WORDS)], STRINGS[i % len(STRINGS)]],
                "updated_at": T0 + timedelta(days=i, microseconds=0 if i % 2 else 1234 * i),
            }
        )
    await factories.insert_rows(services, models.Book, books)
    await factories.insert_rows(
        services,
        models.TopicBookMapping,
        [
            {"topic_id": f"t{t}", "book_id": f"b{i:03d}", "weight": WEIGHTS[(i + t) % len(WEIGHTS)]}
            for i in range(40)
            for t in range(6)
            if (i + t) % 3 != 0 and t != 5
        ],
    )
