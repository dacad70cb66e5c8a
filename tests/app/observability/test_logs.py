"""Logs: one JSON object per line without ANSI colours, and no SQLAlchemy pool chatter."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import text

from app.core.settings import Settings
from app.db.engine import make_engine
from app.observability.logging import JsonFormatter, configure_logging


class Lines(logging.Handler):
    """Formats each record as it is emitted (inside the request's span, as stderr would)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_uvicorn_colour_copies_and_ansi_escapes_are_dropped() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        "Started \x1b[1mserver\x1b[0m\nprocess",
        (),
        None,
    )
    record.color_message = "Started \x1b[36mserver\x1b[0m process"
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line and "\\u001b" not in line
    fields = orjson.loads(line)
    assert "color_message" not in fields
    assert fields["message"] == "Started server\nprocess"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging changes the root logger: put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


async def test_disposing_an_engine_logs_nothing_at_info(
    settings: Settings, root_logging: None
) -> None:
    configure_logging("INFO", "json")
    lines = Lines(JsonFormatter())
    logging.getLogger().addHandler(lines)
    engine = make_engine(settings)  # our fair pool, as every command builds it
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await engine.dispose()  # SQLAlchemy logs "Pool disposed" / "Pool recreating" at INFO
    assert not [line for line in lines.lines if "Pool" in line], lines.lines
    logging.getLogger("bookbridge.x").info("still here")
    assert orjson.loads(lines.lines[-1])["message"] == "still here"
