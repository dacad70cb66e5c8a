"""A/B experiments: a stable split close to the shares, exposures, attributed clicks and CTR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.core.settings import Experiment, Variant
from app.reco import service
from app.reco.cache import RecoCache
from app.reco.experiments import assign
from app.runtime.services import Services
from tests import reco_factories as f
from tests.app.reco.test_topic import refresh, setup
from tests.conftest import GraphQLClient

EXP = Experiment(
    id="exp1",
    variants=[
        Variant(name="A", strategy="TOPIC", share=0.7),
        Variant(name="B", strategy="TRENDING", share=0.3),
    ],
)


def test_split_is_stable_and_close_to_the_shares() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    first = [assign(EXP, u).name for u in users]
    assert first == [assign(EXP, u).name for u in users]
    share_a = first.count("A") / len(users)
    assert abs(share_a - 0.7) < 0.015
    other = Experiment(id="exp2", variants=EXP.variants)  # another experiment: another split
    assert [assign(other, u).name for u in users[:200]] != first[:200]


def with_experiment(services: Services) -> Services:
    reco = services.settings.reco.model_copy(update={"experiments": [EXP]})
    settings = services.settings.model_copy(update={"reco": reco})
    return Services(
        settings=settings,
        engine=services.engine,
        read_engine=services.read_engine,
        reco_cache=RecoCache(reco),
    )


async def test_exposures_clicks_and_ctr_per_variant(services: Services, gql: GraphQLClient) -> None:
    await setup(services)
    await refresh(services)
    s = with_experiment(services)
    users: dict[str, list[str]] = {"A": [], "B": []}
    for i in range(40):
        user = f"student-{i}"
        users[assign(EXP, user).name].append(user)
        await f.study_set(services, f"set-{i}", user, ["t1"])
    served = {}
    for i in range(40):
        rec = await service.recommendations(s, f"set-{i}", 3, None)
        assert rec.experiment == "exp1" and rec.variant == assign(EXP, f"student-{i}").name
        assert rec.strategy == ("TOPIC" if rec.variant == "A" else "TRENDING")
        served[i] = rec
    await service.recommendations(s, "set-0", 3, None)  # served again from cache: still exposed
    await service.recommendations(s, "set-0", 3, "TOPIC")  # explicit strategy: not in the test
    # after the exposures, which carry the wall clock (f.NOW is the module's import time, minutes
    # earlier on a loaded machine)
    later = datetime.now(UTC) + timedelta(minutes=5)
    clicked = {"A": 0, "B": 0}
    for i in range(0, 40, 4):
        book = served[i].items[0].book_id
        await f.events(services, f"set-{i}", [book], "click", at=later)
        await f.events(
            services, f"set-{i}", [book], "click", at=f.NOW - timedelta(days=1)
        )  # before
        clicked[served[i].variant or ""] += 1
    data = await gql.data(
        '{ experimentResults(experimentId: "exp1") { variants { variant strategy exposures clicks ctr } } }'
    )
    rows = {r["variant"]: r for r in data["experimentResults"]["variants"]}
    exposures = {"A": len(users["A"]), "B": len(users["B"])}
    exposures[assign(EXP, "student-0").name] += 1
    for v in ("A", "B"):
        assert rows[v]["exposures"] == exposures[v]
        assert rows[v]["clicks"] == clicked[v]
        assert abs(rows[v]["ctr"] - clicked[v] / exposures[v]) < 1e-9
    assert rows["A"]["strategy"] == "TOPIC" and rows["B"]["strategy"] == "TRENDING"
