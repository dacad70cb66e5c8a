"""deleteStudentData: for the student themself or an admin."""

from __future__ import annotations

import strawberry

from app.privacy.erasure import erase
from graphql_schema.types.context import Info
from graphql_schema.types.erasure import ErasureResult
from resolvers.guards import require_student_or_admin


async def delete_student_data(info: Info, user_id: strawberry.ID) -> ErasureResult:
    require_student_or_admin(info, str(user_id))
    done = await erase(info.context.services, str(user_id))
    return ErasureResult(
        user_id=user_id,
        study_sets=done.study_sets,
        events=done.events,
        dead_letters=done.dead_letters,
        ingestion_log_entries=done.ingestion_log_entries,
        other_rows=done.other_rows,
        cache_entries=done.cache_entries,
    )
