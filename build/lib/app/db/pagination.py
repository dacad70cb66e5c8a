"""Keyset pagination: opaque cursors, validated page arguments, and the page a query returns."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from app.core.errors import InvalidArgument

T = TypeVar("T")
CursorValue = str | float | int


def encode_cursor(values: Sequence[CursorValue]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, shape: Sequence[type], argument: str = "after") -> tuple[Any, ...]:
    """Decode a cursor whose values must have the given types; a bad one names the argument."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidArgument(argument, "is not a valid cursor") from None
    if not isinstance(values, list) or len(values) != len(shape):
        raise InvalidArgument(argument, "is not a valid cursor for this field")
    out: list[Any] = []
    for raw_value, kind in zip(values, shape, strict=True):
        value = raw_value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidArgument(argument, "is not a valid cursor for this field")
        out.append(value)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PageArgs:
    """A validated `first`/`after` pair; `after` stays opaque until a query decodes it."""

    first: int
    after: str | None

    @classmethod
    def parse(cls, first: int | None, after: str | None, default: int, maximum: int) -> PageArgs:
        size = default if first is None else first
        if size < 0 or size > maximum:
            raise InvalidArgument("first", f"must be between 0 and {maximum} (got {size})")
        if after is not None and (len(after) > 512 or not after):
            raise InvalidArgument("after", "is not a valid cursor")
        return cls(size, after)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next: bool

    @classmethod
    def from_rows(
        cls, rows: Sequence[T], first: int, cursor_of: Callable[[T], Sequence[CursorValue]]
    ) -> Page[T]:
        """Build a page from a query that fetched first + 1 rows (the extra one means 'more')."""
        items = list(rows[:first])
        return cls(items, [encode_cursor(cursor_of(r)) for r in items], len(rows) > first)

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None
