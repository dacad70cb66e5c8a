"""publisherAnalytics: aggregates only; every number shown is made of k-safe book-days, so no
difference of shown numbers reveals a count behind fewer than k students."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import product
from typing import Any

from sqlalchemy import text

from app.reco import jobs
from app.reco.analytics import Point, publisher_report
from app.runtime.services import Services
from tests import reco_factories as f
from tests.conftest import GraphQLClient
from tests.ingest_helpers import apply

QUERY = """
query($p: ID!, $from: DateTime, $to: DateTime) {
  publisherAnalytics(publisherId: $p, from: $from, to: $to) {
    totalEvents kAnonymity suppressedDays
    timeline { day events students }
    books { book { id } events peakDailyStudents }
  }
}"""
DAY_A, DAY_B = f.NOW - timedelta(days=2), f.NOW - timedelta(days=1)


async def refresh(services: Services, k: int = 5, full: bool = False) -> dict[str, Any]:
    async with services.engine.begin() as conn:
        return await jobs.refresh_analytics(conn, k, full=full)


async def assert_as_if_rebuilt(services: Services) -> None:
    """The aggregates are what a full rebuild from the raw events makes of them."""
    incremental = await f.analytics_rows(services)
    assert (await refresh(services, full=True))["full"] is True
    assert await f.analytics_rows(services) == incremental


async def students(services: Services, n: int) -> None:
    """Study sets ss0..ss{n-1} of students u0..u{n-1}."""
    for i in range(n):
        await f.study_set(services, f"ss{i}", f"u{i}", ["t1"])


async def read(services: Services, book: str, readers: range, at: datetime, each: int = 1) -> None:
    for i in readers:
        await f.events(services, f"ss{i}", [book] * each, "view", at=at)


async def every_range(gql: GraphQLClient) -> dict[tuple[str | None, str | None], Any]:
    """What a publisher sees over every range with bounds on day A, day B or none."""
    bounds = [None, DAY_A.isoformat(), DAY_B.isoformat()]
    return {
        (lo, hi): (await gql.data(QUERY, {"p": "p1", "from": lo, "to": hi}))["publisherAnalytics"]
        for lo, hi in product(bounds, bounds)
    }


CELL = text("SELECT events, students FROM analytics_daily_book WHERE book_id = :b AND day = :d")


async def cell(services: Services, book: str, at: datetime) -> tuple[int, int]:
    """The (events, students) of one book-day as the worker stored it (withheld or not)."""
    async with services.engine.connect() as conn:
        row = (await conn.execute(CELL, {"b": book, "d": at.date()})).one()
    return int(row.events), int(row.students)


def book_events(data: dict[str, Any], book: str) -> int | None:
    events: int | None = next(b["events"] for b in data["books"] if b["book"]["id"] == book)
    return events


async def test_counts_from_fewer_than_k_students_are_withheld(
    services: Services, gql: GraphQLClient
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}, "b2": {"t1": 0.5}})
    await f.books(services, {"x1": {"t1": 1.0}}, publisher="p2")
    busy, quiet = DAY_A, DAY_B
    await students(services, 6)
    await read(services, "b1", range(6), busy, each=2)  # 6 students, 12 events
    for i in range(2):
        await f.events(services, f"ss{i}", ["b2", "b1", "x1"], "view", at=quiet)  # 2 students
    await refresh(services)
    data = (await gql.data(QUERY, {"p": "p1"}))["publisherAnalytics"]
    assert data["kAnonymity"] == 5
    assert data["timeline"] == [
        {"day": busy.date().isoformat(), "events": 12, "students": 6},
        {"day": quiet.date().isoformat(), "events": None, "students": None},
    ]
    assert data["suppressedDays"] == 1
    assert data["totalEvents"] == 12  # the withheld day is not in the total either
    books = {b["book"]["id"]: b for b in data["books"]}
    # b1's 2 events of the quiet day came from 2 students: not in its total either
    assert books["b1"]["events"] == 12 and books["b1"]["peakDailyStudents"] == 6
    assert books["b2"]["events"] is None and books["b2"]["peakDailyStudents"] is None
    assert "x1" not in books  # another publisher's book
    later = (await gql.data(QUERY, {"p": "p1", "from": quiet.isoformat()}))["publisherAnalytics"]
    assert later["totalEvents"] is None and later["books"][0]["events"] is None


async def test_two_ranges_one_day_apart_reveal_nothing_of_a_withheld_day(
    services: Services, gql: GraphQLClient
) -> None:
    """b1 has 6 students on day A and 2 on day B. Before, its total over A..B minus its total
    over A alone was its day-B count; now whatever happens on day B behind fewer than k students
    changes no number of any range."""
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}})
    await students(services, 7)
    await read(services, "b1", range(6), DAY_A, each=2)
    await read(services, "b1", range(2), DAY_B)
    await refresh(services)
    seen = await every_range(gql)
    assert book_events(seen[(DAY_A.isoformat(), DAY_B.isoformat())], "b1") == 12
    assert book_events(seen[(DAY_A.isoformat(), DAY_A.isoformat())], "b1") == 12  # difference 0
    assert book_events(seen[(DAY_B.isoformat(), DAY_B.isoformat())], "b1") is None

    # day B gets 3 more events and a third student: still behind fewer than k = 5
    await read(services, "b1", range(3), DAY_B)
    await refresh(services)
    assert await cell(services, "b1", DAY_B) == (5, 3)  # the withheld cell did change
    assert await every_range(gql) == seen  # and nothing a publisher can see did


async def test_a_publisher_day_minus_its_books_reveals_nothing_of_the_withheld_books(
    services: Services, gql: GraphQLClient
) -> None:
    """On day A, b1 has 6 students and b2 has 2. Before, the day's total minus b1's total over
    that day was b2's count (and the day's students minus b1's, b2's own readers); now the day
    counts b1 only, and b2's withheld cell changes nothing anywhere."""
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}, "b2": {"t1": 0.5}})
    await students(services, 9)
    await read(services, "b1", range(6), DAY_A, each=2)
    await read(services, "b2", range(6, 8), DAY_A)  # students nobody else had that day
    await refresh(services)
    seen = await every_range(gql)
    one_day = seen[(DAY_A.isoformat(), DAY_A.isoformat())]
    assert one_day["timeline"] == [{"day": DAY_A.date().isoformat(), "events": 12, "students": 6}]
    assert book_events(one_day, "b1") == 12 and book_events(one_day, "b2") is None
    day_total = one_day["timeline"][0]["events"]
    assert day_total - sum(b["events"] or 0 for b in one_day["books"]) == 0

    await read(services, "b2", range(6, 9), DAY_A, each=2)  # 3 students, 8 events: still < k
    await refresh(services)
    assert await cell(services, "b2", DAY_A) == (8, 3)
    assert await every_range(gql) == seen


async def test_k_safe_counts_are_exact(services: Services, gql: GraphQLClient) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}, "b2": {"t1": 0.5}, "b3": {"t1": 0.2}})
    await f.books(services, {"x1": {"t1": 1.0}}, publisher="p2")
    day_c = f.NOW - timedelta(days=3)
    await students(services, 9)
    await read(services, "b1", range(5), DAY_A)  # exactly k students: shown
    await read(services, "b1", range(1), DAY_A, each=2)
    await read(services, "b2", range(3, 9), DAY_A)  # u3 and u4 read b1 too
    await read(services, "b3", range(2), DAY_A)  # withheld
    await read(services, "x1", range(9), DAY_A)  # another publisher's book
    await read(services, "b1", range(4), DAY_B)  # k - 1 students: withheld
    await read(services, "b2", range(6), DAY_B, each=2)
    await read(services, "b3", range(1), day_c)  # a day without any k-safe book-day
    await refresh(services)
    data = (await gql.data(QUERY, {"p": "p1"}))["publisherAnalytics"]
    assert data["timeline"] == [
        {"day": day_c.date().isoformat(), "events": None, "students": None},
        {"day": DAY_A.date().isoformat(), "events": 7 + 6, "students": 9},  # u0..u8
        {"day": DAY_B.date().isoformat(), "events": 12, "students": 6},
    ]
    assert data["suppressedDays"] == 1 and data["totalEvents"] == 25
    assert data["books"] == [
        {"book": {"id": "b2"}, "events": 18, "peakDailyStudents": 6},
        {"book": {"id": "b1"}, "events": 7, "peakDailyStudents": 5},
        {"book": {"id": "b3"}, "events": None, "peakDailyStudents": None},
    ]
    assert data["totalEvents"] == sum(b["events"] or 0 for b in data["books"])
    publisher_rows = (await f.analytics_rows(services))["publisher"]
    assert publisher_rows == [
        ("p1", DAY_A.date(), 13, 9),
        ("p1", DAY_B.date(), 12, 6),
        ("p2", DAY_A.date(), 9, 9),
    ]


async def test_students_are_shown_only_for_the_k_the_aggregates_were_built_for(
    services: Services,
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}, "b2": {"t1": 0.5}})
    await students(services, 6)
    await read(services, "b1", range(6), DAY_A)
    await read(services, "b2", range(4), DAY_A)
    await refresh(services, k=5)
    async with services.engine.connect() as conn:
        at_5 = await publisher_report(conn, "p1", None, None, 5)
        at_4 = await publisher_report(conn, "p1", None, None, 4)
    assert at_5.timeline == [Point(DAY_A.date(), 6, 6)]
    # built for 5, the publisher rows leave out b2's 4 students: not the day's students at k=4
    assert at_4.timeline == [Point(DAY_A.date(), 10, None)]
    assert (await refresh(services, k=4))["full"] is True  # another k: every day again
    async with services.engine.connect() as conn:
        at_4 = await publisher_report(conn, "p1", None, None, 4)
    assert at_4.timeline == [Point(DAY_A.date(), 10, 6)]


async def test_range_bounds_are_utc_days(services: Services, gql: GraphQLClient) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}})
    await students(services, 5)
    await read(services, "b1", range(5), DAY_A)
    await refresh(services)
    # 02:00 at +05:00 on day B is 21:00 UTC on day A
    bound = DAY_B.date().isoformat() + "T02:00:00+05:00"
    data = (await gql.data(QUERY, {"p": "p1", "from": bound}))["publisherAnalytics"]
    assert data["totalEvents"] == 5


# --- the refresh is incremental: only the days changed since the last run are recomputed ---

NO_ROWS = {"publisher": 0, "book": 0, "topic": 0}
ERASE = "mutation($u: ID!) { deleteStudentData(userId: $u) { events } }"


async def test_a_refresh_recomputes_only_the_days_touched_since_the_last(
    services: Services, gql: GraphQLClient
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}, "b2": {"t1": 0.5}})
    await students(services, 6)
    await read(services, "b1", range(6), DAY_A)
    await read(services, "b2", range(6), DAY_B)
    first = await refresh(services)
    assert first["full"] is True and first["days"] == 2  # the first run builds every day
    assert await refresh(services) == {"full": False, "days": 0, "rows": NO_ROWS}

    await apply(gql, "engagement_events", [f.event_record("late", "ss0", "b1", DAY_A, "t1")])
    again = await refresh(services)
    assert again == {"full": False, "days": 1, "rows": {"publisher": 1, "book": 1, "topic": 1}}
    assert await cell(services, "b1", DAY_A) == (7, 6)
    assert await cell(services, "b2", DAY_B) == (6, 6)
    await assert_as_if_rebuilt(services)


async def test_erasure_then_a_refresh_removes_the_students_counts(
    services: Services, gql: GraphQLClient
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}})
    await students(services, 6)
    await read(services, "b1", range(6), DAY_A, each=2)
    await read(services, "b1", range(1), DAY_B)  # u0 alone
    await refresh(services)
    assert await cell(services, "b1", DAY_A) == (12, 6)

    assert (await gql.data(ERASE, {"u": "u0"}))["deleteStudentData"]["events"] == 3
    done = await refresh(services)
    assert done["full"] is False and done["days"] == 2
    assert await cell(services, "b1", DAY_A) == (10, 5)
    assert [r[1] for r in (await f.analytics_rows(services))["book"]] == [DAY_A.date()]
    data = (await gql.data(QUERY, {"p": "p1"}))["publisherAnalytics"]
    assert data["timeline"] == [{"day": DAY_A.date().isoformat(), "events": 10, "students": 5}]
    await assert_as_if_rebuilt(services)


async def test_a_book_moved_to_another_publisher_moves_its_days(
    services: Services, gql: GraphQLClient
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}, "b2": {"t1": 0.5}})
    await students(services, 5)
    await read(services, "b1", range(5), DAY_A)
    await read(services, "b1", range(5), DAY_B)
    await read(services, "b2", range(5), DAY_B)
    await refresh(services)
    book = {"id": "b1", "publisherId": "p1", "title": "Renamed", "updatedAt": f.NOW.isoformat()}
    later, latest = [(f.NOW + timedelta(minutes=m)).isoformat() for m in (1, 2)]
    await apply(gql, "books", [book | {"updatedAt": later}])
    assert (await refresh(services))["days"] == 0  # a new title changes no count

    await apply(gql, "books", [book | {"publisherId": "p2", "updatedAt": latest}])
    moved = await refresh(services)
    assert moved["full"] is False and moved["days"] == 2
    publishers = (await f.analytics_rows(services))["publisher"]
    assert [(r[0], r[1], r[2]) for r in publishers] == [
        ("p1", DAY_B.date(), 5),
        ("p2", DAY_A.date(), 5),
        ("p2", DAY_B.date(), 5),
    ]
    await assert_as_if_rebuilt(services)


async def test_a_study_set_given_to_another_student_recounts_its_days(
    services: Services, gql: GraphQLClient
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}})
    await students(services, 6)
    await read(services, "b1", range(6), DAY_A)
    await refresh(services)
    assert await cell(services, "b1", DAY_A) == (6, 6)
    moved = {"id": "ss5", "userId": "u0", "title": "My set", "createdAt": f.NOW.isoformat()}
    await apply(gql, "study_sets", [moved])
    assert (await refresh(services))["days"] == 1
    assert await cell(services, "b1", DAY_A) == (6, 5)
    await assert_as_if_rebuilt(services)


async def test_truncating_the_events_makes_the_next_refresh_rebuild(services: Services) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}})
    await students(services, 5)
    await read(services, "b1", range(5), DAY_A)
    await refresh(services)
    async with services.engine.begin() as conn:
        await conn.execute(text("TRUNCATE engagement_events"))
    assert await refresh(services) == {"full": True, "days": 0, "rows": NO_ROWS}
    assert await f.analytics_rows(services) == {"publisher": [], "book": [], "topic": []}
