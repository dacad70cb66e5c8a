"""Per-record validation: the values the ingestion stores, whichever path computed them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.ingest.validate import RecordInvalid, string_list, timestamp

SENT = [
    "2026-07-01T00:00:00Z",
    "2026-07-01T00:00:00+00:00",
    "2026-07-01T00:00:00-00:00",
    "2026-07-01T12:34:56.123456+00:00",
    "2026-07-01T12:34:56.000000+00:00",  # isoformat() writes no fraction for zero
    "2026-07-01T12:34:56.000001Z",
    "2026-07-01T12:34:56.123+00:00",
    "2026-07-01T12:34:56,123456+00:00",
    "2026-07-01 12:34:56+00:00",
    "2026-07-01T12:34+00:00",
    "2026-07-01T12:34:56+02:00",
    "2026-07-01T01:30:00-05:30",
    "2026-07-01T12:34:56",  # naive: taken as UTC
    "2026-07-01",
    "2026-W27-3T00:00:00+00:00",
    "20260701T123456+0000",
    "2026-07-01T123456.1+00:00",
]


def expected(sent: str) -> str:
    value = datetime.fromisoformat(sent.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


@pytest.mark.parametrize("sent", SENT)
def test_timestamps_are_stored_as_isoformat_in_utc(sent: str) -> None:
    assert timestamp({"t": sent}, "t", "t") == expected(sent)


def test_timestamps_in_every_form_agree_with_isoformat() -> None:
    rng = random.Random(15)
    start = datetime(1900, 1, 2, tzinfo=UTC)
    offsets = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
    for _ in range(3000):
        moment = start + timedelta(
            seconds=rng.randrange(4_000_000_000), microseconds=rng.choice([0, 1, 999_999])
        )
        local = moment.astimezone(rng.choice(offsets))
        sent = local.isoformat(timespec=rng.choice(["auto", "seconds", "milliseconds"]))
        if rng.random() < 0.5:
            sent = sent.replace("+00:00", "Z")
        assert timestamp({"t": sent}, "t", "t") == expected(sent), sent
    when = datetime(2026, 7, 1, 12, tzinfo=timezone(timedelta(hours=3)))
    assert timestamp({"t": when}, "t", "t") == "2026-07-01T09:00:00+00:00"


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("yesterday", "t must be an ISO-8601 date-time"),
        ("1899-12-31T23:59:59+00:00", "t is before 1900"),
        ((datetime.now(UTC) + timedelta(days=2)).isoformat(), "t is in the future"),
        (12, "t must be a date-time"),
    ],
)
def test_timestamps_refused(sent: object, reason: str) -> None:
    with pytest.raises(RecordInvalid, match=reason):
        timestamp({"t": sent}, "t", "t")


def test_string_lists_are_stripped_and_deduplicated_in_order() -> None:
    record = {"tags": [" b", "a ", "b", "c"]}
    assert string_list(record, "tags", "tags", max_items=4, max_len=5) == ["b", "a", "c"]
    assert string_list({}, "tags", "tags", max_items=4, max_len=5) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a", "tags must be a list of strings"),
        (["a"] * 5 + [1], "tags must be a list of strings"),  # the type before the count
        (["a"] * 6, "tags has more than 4 items"),
        (["a", " "], "tags items must be 1 to 5 characters"),
        (["a", "abcdef"], "tags items must be 1 to 5 characters"),
        (["a", "b\x00"], "tags items contain a NUL or unpaired surrogate character"),
        (["a", "\ud800"], "tags items contain a NUL or unpaired surrogate character"),
    ],
)
def test_string_lists_refused(value: object, reason: str) -> None:
    with pytest.raises(RecordInvalid, match=reason):
        string_list({"tags": value}, "tags", "tags", max_items=4, max_len=5)
