"""Loads the bundled demo data through the ingestion mutations, executed in-process."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from app.core.settings import Settings
from app.core.viewer import SYSTEM
from app.runtime.services import Services
from graphql_schema.schema import build_schema
from graphql_schema.types.context import Context

log = logging.getLogger("app.demo")

DATA = Path(__file__).resolve().parent / "data"
BATCH_SIZE = 5_000

# (file stem, mutation, input type) in dependency order
ENTITIES = (
    ("publishers", "upsertPublishers", "UpsertPublishersInput"),
    ("subjects", "upsertSubjects", "UpsertSubjectsInput"),
    ("grades", "upsertGrades", "UpsertGradesInput"),
    ("categories", "upsertCategories", "UpsertCategoriesInput"),
    ("topics", "upsertTopics", "UpsertTopicsInput"),
    ("books", "upsertBooks", "UpsertBooksInput"),
    ("topic_book_mappings", "upsertTopicBookMappings", "UpsertTopicBookMappingsInput"),
    ("study_sets", "upsertStudySets", "UpsertStudySetsInput"),
    ("engagement_events", "recordEngagementEvents", "RecordEngagementEventsInput"),
)


def read_records(stem: str, data_dir: Path = DATA) -> Iterator[dict[str, Any]]:
    with gzip.open(data_dir / f"{stem}.jsonl.gz", "rb") as lines:
        for line in lines:
            if line.strip():
                yield orjson.loads(line)


def batches(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def load_demo(
    settings: Settings, data_dir: Path = DATA, batch_size: int = BATCH_SIZE
) -> dict[str, int]:
    """Send every demo file through its ingestion mutation; return records received per entity.

    Idempotency keys name the file and batch number, so loading twice replays instead of
    re-applying.
    """
    schema = build_schema()
    services = Services.create(settings)
    counts: dict[str, int] = {}
    try:
        for stem, mutation, input_type in ENTITIES:
            document = (
                f"mutation($input: {input_type}!) {{ {mutation}(input: $input) "
                "{ received inserted updated unchanged duplicates rejected { index id reason } } }"
            )
            counts[stem] = 0
            for number, batch in enumerate(batches(read_records(stem, data_dir), batch_size)):
                variables = {"input": {"idempotencyKey": f"demo:{stem}:{number}", "records": batch}}
                result = await schema.execute(
                    document,
                    variable_values=variables,
                    context_value=Context.create(services, viewer=SYSTEM),
                )
                if result.errors:
                    raise RuntimeError(f"demo {stem} batch {number}: {result.errors[0].message}")
                assert result.data is not None
                outcome = result.data[mutation]
                if outcome["rejected"]:
                    log.warning(
                        "demo %s: %d rejected, e.g. %s",
                        stem,
                        len(outcome["rejected"]),
                        outcome["rejected"][0],
                    )
                counts[stem] += outcome["received"]
    finally:
        await services.close()
    return counts
