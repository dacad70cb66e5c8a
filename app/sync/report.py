"""Short summaries of a batch's errors for people: a count per reason and the first few ids.

The full list always goes to the dead-letter file; the log and the end summary carry these.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

FIRST_IDS = 3
TOP_REASONS = 3

_RECORD_AT = re.compile(r" at \.records\[(\d+)\]")
_FOUND = re.compile(r"[,;]? found: .*$", re.DOTALL)
_VARIABLE = re.compile(r"^Variable '\$\w+' has invalid value:\s*")


def group(errors: Iterable[tuple[str, str | None]]) -> dict[str, list[str | None]]:
    """reason -> ids of the records it hit, most frequent reason first."""
    by_reason: dict[str, list[str | None]] = {}
    for reason, record_id in errors:
        by_reason.setdefault(reason, []).append(record_id)
    return dict(sorted(by_reason.items(), key=lambda item: -len(item[1])))


def summarise(errors: Iterable[tuple[str, str | None]]) -> str:
    """`N errors: reason (count: id, id, id, ...); ...; and K more reasons` on one line."""
    grouped = group(errors)
    total = sum(len(ids) for ids in grouped.values())
    parts = []
    for reason, ids in list(grouped.items())[:TOP_REASONS]:
        known = [i for i in ids if i is not None][:FIRST_IDS]
        more = ", ..." if len(ids) > len(known) else ""
        example = f": {', '.join(known)}{more}" if known else ""
        parts.append(f"{reason} ({len(ids)}{example})")
    if len(grouped) > TOP_REASONS:
        parts.append(f"and {len(grouped) - TOP_REASONS} more reasons")
    return f"{total} error{'s' * (total != 1)}: " + "; ".join(parts)


def graphql_errors(message: str, records: Sequence[dict[str, Any]]) -> str:
    """Summarise a failed batch's joined GraphQL error messages (one per record and field)."""
    errors: list[tuple[str, str | None]] = []
    for part in message.split("; "):
        at = _RECORD_AT.search(part)
        record_id = None
        if at is not None and int(at.group(1)) < len(records):
            record_id = str(records[int(at.group(1))].get("id"))
        reason = _VARIABLE.sub("", _FOUND.sub("", _RECORD_AT.sub("", part))).strip().rstrip(".")
        errors.append((reason[:300], record_id))
    hint = any("unknown field" in reason for reason, _ in errors)
    return summarise(errors) + (" (is --entity right for this file?)" if hint else "")


def reason_counts(summary_reasons: Counter[str]) -> list[str]:
    """The end summary's `rejected because` lines, most frequent first."""
    lines = [f"    {count:>8}  {reason[:100]}" for reason, count in summary_reasons.most_common(5)]
    if len(summary_reasons) > 5:
        lines.append(f"    {'':>8}  ... and {len(summary_reasons) - 5} more reasons")
    return lines
