"""The TOPIC formula on hand-made data: weight x ln(engagement + 1) x recency, with reasons."""

from __future__ import annotations

import math

from app.reco import jobs
from app.runtime.services import Services
from tests import reco_factories as f
from tests.conftest import GraphQLClient

QUERY = """
query($id: ID!, $s: RecommendationStrategy, $first: Int) {
  recommendations(studySetId: $id, strategy: $s, first: $first) {
    strategy items { book { id } score reasons }
  }
}"""


async def refresh(services: Services) -> None:
    async with services.engine.begin() as conn:
        await jobs.refresh_popularity(conn, services.settings.reco.half_life_days, f.TODAY)
        await jobs.refresh_trending(conn, 100)
        await jobs.refresh_topic_top(conn, 100)
    services.reco_cache.clear_local()


async def setup(services: Services) -> None:
    await f.taxonomy(services)
    await f.books(
        services,
        {"b1": {"t1": 0.8}, "b2": {"t1": 0.5}, "b3": {"t1": 0.9, "t2": 0.4}, "b4": {"t2": 1.0}},
    )
    await f.daily_book(services, "b1", 10, days_ago=0)
    await f.daily_book(services, "b2", 30, days_ago=14)  # one half-life ago: recency 0.5
    await f.daily_book(services, "b4", 5, days_ago=0)
    await f.study_set(services, "ss1", "u1", ["t1"])


async def test_topic_scores_have_known_answers(services: Services, gql: GraphQLClient) -> None:
    await setup(services)
    await refresh(services)
    data = await gql.data(QUERY, {"id": "ss1", "s": "TOPIC"})
    rec = data["recommendations"]
    assert rec["strategy"] == "TOPIC"
    got = [(i["book"]["id"], round(i["score"], 6)) for i in rec["items"]]
    assert got[:3] == [
        ("b1", round(0.8 * math.log(11) * 1.0, 6)),
        ("b2", round(0.5 * math.log(31) * 0.5, 6)),
        ("b3", 0.0),
    ]
    b1 = rec["items"][0]["reasons"]
    assert "Matches your topic 'Photosynthesis' (weight 0.80)" in b1
    assert any("10 engagements" in r and "recency factor 1.00" in r for r in b1)
    b2 = rec["items"][1]["reasons"]
    assert any("recency factor 0.50 (half-life 14 days)" in r for r in b2)
    assert "No engagement recorded yet: ranked by topic weight" in rec["items"][2]["reasons"]


async def test_scores_sum_over_the_study_sets_topics(
    services: Services, gql: GraphQLClient
) -> None:
    await setup(services)
    await f.study_set(services, "ss2", "u2", ["t1", "t2"])
    await f.daily_book(services, "b3", 4, days_ago=0)
    await refresh(services)
    items = (await gql.data(QUERY, {"id": "ss2", "s": "TOPIC"}))["recommendations"]["items"]
    scores = {i["book"]["id"]: i["score"] for i in items}
    assert math.isclose(scores["b3"], (0.9 + 0.4) * math.log(5))
    assert math.isclose(scores["b4"], 1.0 * math.log(6))
    b3 = next(i for i in items if i["book"]["id"] == "b3")
    assert (
        b3["reasons"][0]
        == "Matches your topic 'Photosynthesis' (weight 0.90) and 1 more of your topics"
    )


async def test_completed_books_are_left_out(services: Services, gql: GraphQLClient) -> None:
    await setup(services)
    await f.study_set(services, "other", "u1", ["t2"])  # same student, another study set
    await f.events(services, "other", ["b1"], "complete")
    await f.events(services, "ss1", ["b2"], "view")  # viewed, not completed: stays
    await refresh(services)
    items = (await gql.data(QUERY, {"id": "ss1", "s": "TOPIC"}))["recommendations"]["items"]
    assert [i["book"]["id"] for i in items] == ["b2", "b3", "b4"]
    # b4 is not in the study set's topics: it fills the list from TRENDING, and says so
    assert items[2]["reasons"][0].startswith("Fallback to TRENDING (fewer than 10 TOPIC results")
    assert items[2]["score"] < items[1]["score"] or items[1]["score"] == 0


async def test_unknown_study_set_and_bad_first(gql: GraphQLClient) -> None:
    body = await gql(QUERY, {"id": "nope"})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = await gql(QUERY, {"id": "nope", "first": 0})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_topics_matched_from_title_when_none_sent(
    services: Services, gql: GraphQLClient
) -> None:
    await setup(services)
    await f.study_set(services, "ss3", "u3", [], title="Notes on photosynthesis in plants")
    await refresh(services)
    items = (await gql.data(QUERY, {"id": "ss3", "s": "TOPIC"}))["recommendations"]["items"]
    assert items[0]["book"]["id"] == "b1"
    assert items[0]["reasons"][0].startswith("Matches your topic 'Photosynthesis'")


async def test_live_ranking_matches_the_workers(services: Services) -> None:
    """A topic the worker has not ranked yet is ranked live, with the same answer."""
    from app.reco.strategies import recommend_many

    await setup(services)
    await f.study_set(services, "ss2", "u2", ["t1", "t2"])
    async with services.engine.begin() as conn:
        await jobs.refresh_popularity(conn, services.settings.reco.half_life_days, f.TODAY)
    reco = services.settings.reco

    async def lists() -> dict[str, list[tuple[str, float]]]:
        async with services.read_engine.connect() as conn:
            found = await recommend_many(conn, reco, ["ss1", "ss2"], "TOPIC", 10)
        return {k: [(i.book_id, round(i.score, 9)) for i in v.items] for k, v in found.items()}

    live = await lists()
    async with services.engine.begin() as conn:
        await jobs.refresh_topic_top(conn, 100)
    assert await lists() == live
    assert live["ss2"][0][0] == "b1"
