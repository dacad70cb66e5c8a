"""The viewer: who a request acts for, and the checks every layer asks it (no GraphQL here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from app.core.errors import ClientError
from app.core.scopes import WRITE_SCOPE_OF_ENTITY, Scope

Role = Literal["anonymous", "student", "publisher", "admin", "service"]


class Unauthenticated(ClientError):
    code = "UNAUTHENTICATED"


class Forbidden(ClientError):
    code = "FORBIDDEN"


@dataclass(frozen=True, slots=True)
class Viewer:
    """A caller: an API key (role 'service', or 'admin' with the admin scope) or a JWT user."""

    role: Role = "anonymous"
    user_id: str | None = None  # JWT subject of a student or admin user
    publisher_id: str | None = None  # the publisher a key or a publisher user is bound to
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    key_id: str | None = None
    key_name: str | None = None

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    @property
    def authenticated(self) -> bool:
        return self.role != "anonymous"

    @property
    def subject(self) -> str:
        """A stable name for rate limits and logs; never a student's id in clear (see logging)."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return "anonymous"

    def has(self, scope: Scope) -> bool:
        return self.is_admin or scope in self.scopes

    def require(self, scope: Scope) -> None:
        if self.has(scope):
            return
        if not self.authenticated:
            raise Unauthenticated(f"This operation needs an API key with the '{scope}' scope")
        raise Forbidden(f"This operation needs the '{scope}' scope")

    def require_write(self, entity: str) -> str | None:
        """Check the scope writing `entity` needs; return the publisher the write is bound to."""
        self.require(WRITE_SCOPE_OF_ENTITY[entity])
        return None if self.is_admin else self.publisher_id

    def can_see_student(self, user_id: str) -> bool:
        return self.is_admin or (self.role == "student" and self.user_id == user_id)

    def require_student_or_admin(self, user_id: str) -> None:
        if self.can_see_student(user_id):
            return
        if not self.authenticated:
            raise Unauthenticated("Sign in as this student (or an admin) to see their data")
        raise Forbidden("Only this student or an admin may see or change their data")

    def require_student_reader(self) -> None:
        """Lists of students' data need a student (their own rows) or an admin."""
        if self.is_admin or (self.role == "student" and self.user_id):
            return
        if not self.authenticated:
            raise Unauthenticated("Sign in as a student (or an admin) to list study sets")
        raise Forbidden("Only students (their own) and admins may read study sets")

    def require_publisher(self, publisher_id: str) -> None:
        """Analytics of one publisher: an admin, its publisher user, or a key allowed to read it."""
        if self.is_admin:
            return
        if Scope.ANALYTICS_READ in self.scopes and self.publisher_id in (None, publisher_id):
            return
        if not self.authenticated:
            raise Unauthenticated("Publisher analytics need a token of that publisher")
        raise Forbidden("This token may not read that publisher's analytics")

    def batch_scope(self) -> BatchScope:
        """Which ingestion-log entries this viewer may read (they hold record ids and reasons)."""
        if self.is_admin:
            return BatchScope(entities=None, client=None)
        entities = frozenset(e for e, s in WRITE_SCOPE_OF_ENTITY.items() if s in self.scopes)
        if not entities:
            if not self.authenticated:
                raise Unauthenticated("The ingestion log needs an API key")
            raise Forbidden("The ingestion log is for the keys that write (and admins)")
        # A key bound to a publisher sees only its own batches, not its competitors'.
        return BatchScope(entities, self.subject if self.publisher_id is not None else None)


@dataclass(frozen=True, slots=True)
class BatchScope:
    entities: frozenset[str] | None  # None: every entity
    client: str | None  # only batches sent by this client (Viewer.subject), when set


ANONYMOUS = Viewer()
# The process itself (the demo loader, the worker): an admin that no token can claim.
SYSTEM = Viewer(role="admin", scopes=frozenset({Scope.ADMIN}), key_name="system")


@dataclass(frozen=True, slots=True)
class StudentScope:
    """Whose study sets a caller may read; None user_id means any (service or admin callers)."""

    user_id: str | None = None

    @classmethod
    def of(cls, viewer: Viewer) -> StudentScope:
        """A student's: their own study sets; an admin's: any (callers check the role first)."""
        return cls(None if viewer.is_admin else viewer.user_id)
