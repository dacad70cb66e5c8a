"""Turn the failures a person can fix (database unreachable, bad DATABASE_URL...) into two lines.

`bookbridge` commands call `explain(exc)` on an exception that escaped them: it returns the
message to print (what failed, then what to do) and the exit code, or None for a real bug, whose
traceback is then shown as before.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

USAGE = 2
FAILURE = 1

FIX_URL = "fix DATABASE_URL (postgresql://user@host:5432/db) or unset it for the embedded server"


class CliError(Exception):
    """A failure to report as its message (no traceback) with an exit code."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def database_target(url: str | None = None) -> str:
    """`user@host:port/database` of DATABASE_URL (never its password), or the embedded server."""
    url = url if url is not None else os.environ.get("DATABASE_URL")
    if not url:
        return "the embedded PostgreSQL"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "DATABASE_URL"
    host = parsed.host or str(parsed.query.get("host") or "localhost")
    where = f"{host}:{parsed.port or 5432}" if parsed.host else host
    user = f"{parsed.username}@" if parsed.username else ""
    return f"{user}{where}/{parsed.database or ''}"


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(two lines for a person, exit code) for a failure they can fix; None for anything else."""
    for cause in _chain(exc):
        if isinstance(cause, CliError):
            return str(cause), cause.code
        if isinstance(cause, asyncpg.InvalidCatalogNameError):
            target = database_target()
            return (
                f"PostgreSQL at {target}: {cause}\n"
                f"  create it (createdb) or point DATABASE_URL at an existing database",
                FAILURE,
            )
        if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError):
            return (
                f"PostgreSQL at {database_target()} refused the login: {cause}\n"
                "  check the user and password in DATABASE_URL",
                FAILURE,
            )
        if isinstance(cause, socket.gaierror):
            return (
                f"cannot reach PostgreSQL at {database_target()}: unknown host ({cause.strerror})\n"
                f"  {FIX_URL}",
                FAILURE,
            )
        if isinstance(cause, ConnectionRefusedError | TimeoutError) or (
            isinstance(cause, OSError)
            and cause.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
        ):
            reason = "connection refused" if isinstance(cause, ConnectionRefusedError) else cause
            return (
                f"cannot reach PostgreSQL at {database_target()} ({reason})\n"
                f"  start the server, or {FIX_URL}",
                FAILURE,
            )
        if isinstance(cause, ValueError) and "DATABASE_URL" in str(cause):
            return f"{cause}\n  {FIX_URL}", USAGE
    return None
