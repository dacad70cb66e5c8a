"""The ingestion mutations of the contract, one per entity, and the GraphQL document for each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entity:
    name: str  # canonical snake_case name, as the server's ingest service knows it
    mutation: str
    input_type: str

    @property
    def document(self) -> str:
        return (
            f"mutation Sync($input: {self.input_type}!) {{ {self.mutation}(input: $input) {{ "
            "batchId replayed received inserted updated unchanged duplicates "
            "rejected { index id reason } } }"
        )


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity("publishers", "upsertPublishers", "UpsertPublishersInput"),
        Entity("subjects", "upsertSubjects", "UpsertSubjectsInput"),
        Entity("grades", "upsertGrades", "UpsertGradesInput"),
        Entity("categories", "upsertCategories", "UpsertCategoriesInput"),
        Entity("topics", "upsertTopics", "UpsertTopicsInput"),
        Entity("books", "upsertBooks", "UpsertBooksInput"),
        Entity("topic_book_mappings", "upsertTopicBookMappings", "UpsertTopicBookMappingsInput"),
        Entity("study_sets", "upsertStudySets", "UpsertStudySetsInput"),
        Entity("engagement_events", "recordEngagementEvents", "RecordEngagementEventsInput"),
    )
}
ALIASES = {"mappings": "topic_book_mappings", "events": "engagement_events"}


def entity(name: str) -> Entity:
    """Look an entity up by name: snake_case, kebab-case, or an alias ("mappings", "events")."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    try:
        return ENTITIES[key]
    except KeyError:
        known = ", ".join([*ENTITIES, *ALIASES])
        raise ValueError(f"unknown entity {name!r}; one of: {known}") from None
