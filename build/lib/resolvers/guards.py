"""Authorization checks resolvers call at their entry; the data layer filters by viewer as well."""

from __future__ import annotations

from app.core.errors import ClientError
from app.core.scopes import Scope
from app.core.viewer import BatchScope, Forbidden, StudentScope, Viewer
from app.db.records import Record
from graphql_schema.types.context import Info


class NotFound(ClientError):
    code = "NOT_FOUND"


def viewer_of(info: Info) -> Viewer:
    return info.context.viewer


def require_scope(info: Info, scope: Scope) -> Viewer:
    viewer = info.context.viewer
    viewer.require(scope)
    return viewer


def require_write(info: Info, entity: str) -> str | None:
    """Check the scope for writing `entity`; return the publisher the key is bound to, if any."""
    return info.context.viewer.require_write(entity)


def batch_visibility(info: Info) -> BatchScope:
    return info.context.viewer.batch_scope()


def require_internal_analytics(info: Info) -> None:
    """Cross-publisher figures (experiments): admins and unbound analytics:read keys only."""
    viewer = info.context.viewer
    viewer.require(Scope.ANALYTICS_READ)
    if viewer.publisher_id is not None and not viewer.is_admin:
        raise Forbidden("These figures span every publisher; a publisher's token cannot read them")


def require_publisher(info: Info, publisher_id: str) -> None:
    info.context.viewer.require_publisher(publisher_id)


def require_student_or_admin(info: Info, user_id: str) -> None:
    info.context.viewer.require_student_or_admin(user_id)


async def require_study_set(info: Info, study_set_id: str) -> Record:
    """The study set, loaded through the viewer-filtered loader; others' look like unknown ids."""
    info.context.viewer.require_student_reader()
    row = await info.context.loaders.study_set_by_id.load(study_set_id)
    if row is None:
        raise NotFound(f"No study set '{study_set_id}' is visible to you")
    return row


def student_scope(info: Info) -> StudentScope:
    """Whose study sets the viewer may read (a student: their own; an admin: any), for the
    data layer to filter by when the study set is not loaded first."""
    viewer = info.context.viewer
    viewer.require_student_reader()
    return StudentScope.of(viewer)
