"""ErasureResult: what deleteStudentData removed."""

from __future__ import annotations

import strawberry


@strawberry.type(description="What deleteStudentData removed; aggregates keep no identity.")
class ErasureResult:
    user_id: strawberry.ID
    study_sets: int
    events: int
    dead_letters: int
    ingestion_log_entries: int = strawberry.field(
        description="Ingestion-log entries whose rejected records named the student (scrubbed)."
    )
    other_rows: int = strawberry.field(description="Topic links, daily rows, exposures, ...")
    cache_entries: int
