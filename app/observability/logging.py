"""Structured logs: one JSON object per line with the current trace and span ids."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from app.observability import spans

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with ANSI colours
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# What the layers below the HTTP edge know of the current request (the GraphQL operation's
# name): the access-log line of the request carries it. One dict per request, set by the edge.
_request_fields: ContextVar[dict[str, Any] | None] = ContextVar("bookbridge_request", default=None)


class RequestFields:
    """A fresh field dict for the request running in this context, while entered (a class, not
    a generator-based context manager: the HTTP edge opens one per request)."""

    __slots__ = ("fields", "token")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.token = _request_fields.set(self.fields)
        return self.fields

    def __exit__(self, *exc: object) -> None:
        _request_fields.reset(self.token)


def request_fields() -> RequestFields:
    """A fresh field dict for the request running in this context (the HTTP edge opens it)."""
    return RequestFields()


def note_request(**fields: Any) -> None:
    """Add fields to the current request's access-log line (no-op outside a request)."""
    current = _request_fields.get()
    if current is not None:
        current.update(fields)


def trace_ids() -> tuple[str, str] | None:
    context = spans.current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _ANSI.sub("", record.getMessage()),
        }
        if out["message"].startswith("{"):  # a pre-built JSON record: merge its fields
            try:
                fields = orjson.loads(out["message"])
            except orjson.JSONDecodeError:
                fields = None
            if isinstance(fields, dict):
                out.update(fields)
                out["message"] = str(fields.get("message", fields.get("event", "")))
        ids = trace_ids()
        if ids is not None:
            out["trace_id"], out["span_id"] = ids
        out.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k[:1] != "_"}
        )
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """Development: the message as is (as the CLI always printed), plus the trace id if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = trace_ids()
        return f"{line} [trace {ids[0]}]" if ids else line


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
