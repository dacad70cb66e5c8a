"""publisherAnalytics: aggregates only; a count behind fewer than k students is withheld."""

from __future__ import annotations

from datetime import timedelta

from bookbridge.app.reco import jobs
from bookbridge.app.services import Services
from tests import reco_factories as f
from tests.conftest import GraphQLClient

QUERY = """
query($p: ID!, $from: DateTime) {
  publisherAnalytics(publisherId: $p, from: $from) {
    totalEvents kAnonymity suppressedDays
    timeline { day events students }
    books { book { id } events peakDailyStudents }
  }
}"""


async def test_counts_from_fewer_than_k_students_are_withheld(
    services: Services, gql: GraphQLClient
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 1.0}, "b2": {"t1": 0.5}})
    await f.books(services, {"x1": {"t1": 1.0}}, publisher="p2")
    busy, quiet = f.NOW - timedelta(days=2), f.NOW - timedelta(days=1)
    for i in range(6):
        await f.study_set(services, f"ss{i}", f"u{i}", ["t1"])
        await f.events(services, f"ss{i}", ["b1", "b1"], "view", at=busy)  # 6 students, 12 events
    for i in range(2):
        await f.events(services, f"ss{i}", ["b2", "b1", "x1"], "view", at=quiet)  # 2 students
    async with services.engine.begin() as conn:
        await jobs.refresh_analytics(conn)
    data = (await gql.data(QUERY, {"p": "p1"}))["publisherAnalytics"]
    assert data["kAnonymity"] == 5
    assert data["timeline"] == [
        {"day": busy.date().isoformat(), "events": 12, "students": 6},
        {"day": quiet.date().isoformat(), "events": None, "students": None},
    ]
    assert data["suppressedDays"] == 1
    assert data["totalEvents"] == 12  # the withheld day is not in the total either
    books = {b["book"]["id"]: b for b in data["books"]}
    assert books["b1"]["events"] == 14 and books["b1"]["peakDailyStudents"] == 6
    assert books["b2"]["events"] is None and books["b2"]["peakDailyStudents"] is None
    assert "x1" not in books  # another publisher's book
    later = (await gql.data(QUERY, {"p": "p1", "from": quiet.isoformat()}))["publisherAnalytics"]
    assert later["totalEvents"] is None and later["books"][0]["events"] is None
