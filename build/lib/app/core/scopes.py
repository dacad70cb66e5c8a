"""The scopes an API key can hold, and what each one allows."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Scope(StrEnum):
    CATALOG_WRITE = "catalog:write"  # publishers, books, topic-book mappings
    TAXONOMY_WRITE = "taxonomy:write"  # subjects, grades, categories, topics
    STUDYSETS_WRITE = "studysets:write"
    EVENTS_WRITE = "events:write"
    ANALYTICS_READ = "analytics:read"
    ADMIN = "admin"  # everything, including students' data and erasure


# Which scope each ingestion entity needs (the `entity` names of app.ingest.service).
WRITE_SCOPE_OF_ENTITY: dict[str, Scope] = {
    "publishers": Scope.CATALOG_WRITE,
    "books": Scope.CATALOG_WRITE,
    "topic_book_mappings": Scope.CATALOG_WRITE,
    "subjects": Scope.TAXONOMY_WRITE,
    "grades": Scope.TAXONOMY_WRITE,
    "categories": Scope.TAXONOMY_WRITE,
    "topics": Scope.TAXONOMY_WRITE,
    "study_sets": Scope.STUDYSETS_WRITE,
    "engagement_events": Scope.EVENTS_WRITE,
}

# Entities whose records (and ingestion log entries) name students.
STUDENT_ENTITIES = frozenset({"study_sets", "engagement_events"})


def parse_scopes(values: str | Iterable[str]) -> frozenset[Scope]:
    """Parse 'a,b' or an iterable of names; an unknown scope is an error naming the known ones."""
    names = values.split(",") if isinstance(values, str) else list(values)
    out: set[Scope] = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        try:
            out.add(Scope(name))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {name!r} (known: {known})") from None
    if not out:
        raise ValueError("at least one scope is required")
    return frozenset(out)
