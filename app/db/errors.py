"""Which database failures are transient (retry later) and which are the request's bad text."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

# connection exceptions (08), server shutting down or starting (57P01-57P03), out of
# connections (53300), out of resources (53xxx): nothing the request did, gone on retry
TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P0", "53")
# NUL or a character the database encoding cannot hold, sent as text by the client
BAD_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the DBAPI error SQLAlchemy wrapped, and their causes (bounded)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 8 and current not in seen:
        seen.append(current)
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and orig not in seen:
            seen.append(orig)
        current = current.__cause__ or current.__context__
    return seen


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else ""


def is_transient(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached or used just now (refused or
    dropped connection, server restarting, pool exhausted), so the same request may succeed
    a little later."""
    for error in _chain(exc):
        if isinstance(error, sa_exc.TimeoutError):  # no pooled connection in time
            return True
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, OSError | TimeoutError | asyncpg.PostgresConnectionError):
            return True
        if isinstance(error, asyncpg.ConnectionDoesNotExistError) or (
            type(error) is asyncpg.InterfaceError and "clos" in str(error)
        ):  # the connection or the pool went away under the request
            return True
        if _sqlstate(error).startswith(TRANSIENT_SQLSTATE_PREFIXES):
            return True
    return False


def is_bad_text(exc: BaseException) -> bool:
    """True when the database refused text the request sent (NUL, an unpaired surrogate)."""
    for error in _chain(exc):
        if _sqlstate(error) in BAD_TEXT_SQLSTATES:
            return True
        if isinstance(error, UnicodeEncodeError):
            return True
    return False
