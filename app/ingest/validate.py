"""Per-record validation helpers: each returns the cleaned value or raises RecordInvalid."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_ID = 128
MAX_NAME = 500
MAX_TEXT = 20_000
MAX_TAGS = 100
MAX_TAG = 100
MAX_TOPICS = 200
MAX_FUTURE = timedelta(days=1)


_SURROGATE = re.compile("[\ud800-\udfff]")


class RecordInvalid(ValueError):
    """The reason a record was rejected, in words the sender can act on."""


def storable(value: str) -> bool:
    """False for text PostgreSQL refuses: NUL, or an unpaired surrogate (not UTF-8), whatever
    escape (JSON \\u0000, GraphQL \\u{0}) brought it in."""
    return "\x00" not in value and (value.isascii() or _SURROGATE.search(value) is None)


def escaped(value: object) -> object:
    """`value` (JSON-like) with every string made storable: NUL as the six characters \\u0000,
    unpaired surrogates as \\udxxx; so a dead letter keeps what was sent, readably."""
    if isinstance(value, str):
        if storable(value):
            return value
        return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {escaped(k): escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escaped(v) for v in value]
    return value


def ident(record: dict[str, Any], field: str, camel: str, *, required: bool = True) -> str | None:
    value = record.get(field)
    if value is None:
        if required:
            raise RecordInvalid(f"{camel} is required")
        return None
    if not isinstance(value, str):
        raise RecordInvalid(f"{camel} must be a string")
    value = value.strip()
    if not value:
        raise RecordInvalid(f"{camel} must not be empty")
    if len(value) > MAX_ID:
        raise RecordInvalid(f"{camel} is longer than {MAX_ID} characters")
    if not value.isprintable():  # C-fast; refuses control characters and line separators
        raise RecordInvalid(f"{camel} contains control characters")
    return value


def text(
    record: dict[str, Any], field: str, camel: str, *, limit: int = MAX_NAME, required: bool = True
) -> str | None:
    value = record.get(field)
    if value is None:
        if required:
            raise RecordInvalid(f"{camel} is required")
        return None
    if not isinstance(value, str):
        raise RecordInvalid(f"{camel} must be a string")
    if required and not value.strip():
        raise RecordInvalid(f"{camel} must not be empty")
    if len(value) > limit:
        raise RecordInvalid(f"{camel} is longer than {limit} characters")
    if not storable(value):
        raise RecordInvalid(f"{camel} contains a NUL or unpaired surrogate character")
    return value


def string_list(
    record: dict[str, Any], field: str, camel: str, *, max_items: int, max_len: int
) -> list[str] | None:
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise RecordInvalid(f"{camel} must be a list of strings")
    for raw in value:  # every item's type first, as before the count
        if not isinstance(raw, str):
            raise RecordInvalid(f"{camel} must be a list of strings")
    if len(value) > max_items:
        raise RecordInvalid(f"{camel} has more than {max_items} items")
    cleaned: list[str] = []
    for raw in value:
        item = raw.strip()
        if not item or len(item) > max_len:
            raise RecordInvalid(f"{camel} items must be 1 to {max_len} characters")
        if not storable(item):
            raise RecordInvalid(f"{camel} items contain a NUL or unpaired surrogate character")
        if item not in cleaned:
            cleaned.append(item)
    return cleaned


def timestamp(
    record: dict[str, Any], field: str, camel: str, *, required: bool = True
) -> str | None:
    """An aware datetime (naive ones are taken as UTC), not more than a day in the future,
    as `isoformat()` writes it in UTC."""
    value = record.get(field)
    if value is None:
        if required:
            raise RecordInvalid(f"{camel} is required")
        return None
    sent = None
    if isinstance(value, str):
        sent = value.replace("Z", "+00:00")
        try:
            value = datetime.fromisoformat(sent)
        except ValueError:
            raise RecordInvalid(f"{camel} must be an ISO-8601 date-time") from None
    if not isinstance(value, datetime):
        raise RecordInvalid(f"{camel} must be a date-time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > datetime.now(UTC) + MAX_FUTURE:
        raise RecordInvalid(f"{camel} is in the future")
    if value.year < 1900:
        raise RecordInvalid(f"{camel} is before 1900")
    if sent is not None and _is_utc_isoformat(sent):
        return sent  # what isoformat() would write (it costs more than the rest together)
    return value.astimezone(UTC).isoformat()


def _is_utc_isoformat(text: str) -> bool:
    """True for a string `datetime.fromisoformat` accepted that is already what `isoformat()`
    writes for its value in UTC: YYYY-MM-DDTHH:MM:SS, six fraction digits unless all zero,
    +00:00."""
    n = len(text)
    return (
        (n == 25 or (n == 32 and text[19] == "." and text[20:26] != "000000"))
        and text.endswith("+00:00")
        and text[10] == "T"
        and text[4] == "-"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
    )


def weight(record: dict[str, Any], field: str, camel: str) -> float:
    value = record.get(field)
    if value is None:
        raise RecordInvalid(f"{camel} is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordInvalid(f"{camel} must be a number")
    value = float(value)
    if not math.isfinite(value) or value < 0 or value > 1e6:
        raise RecordInvalid(f"{camel} must be a finite number between 0 and 1000000")
    return value
