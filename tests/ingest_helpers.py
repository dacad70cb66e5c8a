"""Helpers for ingestion tests: send a batch through the GraphQL mutation."""

from __future__ import annotations

from typing import Any

from tests.conftest import GraphQLClient

MUTATIONS = {
    "publishers": ("upsertPublishers", "UpsertPublishersInput"),
    "subjects": ("upsertSubjects", "UpsertSubjectsInput"),
    "grades": ("upsertGrades", "UpsertGradesInput"),
    "categories": ("upsertCategories", "UpsertCategoriesInput"),
    "topics": ("upsertTopics", "UpsertTopicsInput"),
    "books": ("upsertBooks", "UpsertBooksInput"),
    "topic_book_mappings": ("upsertTopicBookMappings", "UpsertTopicBookMappingsInput"),
    "study_sets": ("upsertStudySets", "UpsertStudySetsInput"),
    "engagement_events": ("recordEngagementEvents", "RecordEngagementEventsInput"),
}
RESULT = (
    "batchId replayed received inserted updated unchanged duplicates rejected { index id reason }"
)


async def send(
    gql: GraphQLClient, entity: str, records: list[dict[str, Any]], key: str | None = None
) -> dict[str, Any]:
    """The raw GraphQL response of one batch."""
    mutation, input_type = MUTATIONS[entity]
    document = f"mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {RESULT} }} }}"
    return await gql(document, {"input": {"idempotencyKey": key, "records": records}})


async def apply(
    gql: GraphQLClient, entity: str, records: list[dict[str, Any]], key: str | None = None
) -> dict[str, Any]:
    """The BatchResult of one batch that must not fail as a whole."""
    body = await send(gql, entity, records, key)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"][MUTATIONS[entity][0]]
    return result


def counts(result: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        result["inserted"],
        result["updated"],
        result["unchanged"],
        result["duplicates"],
        len(result["rejected"]),
    )
