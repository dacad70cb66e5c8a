"""The worker: lists, reconciliation, reports and analytics; two replicas never run a job twice,
and the incremental analytics refresh recomputes each changed day once, racing ingestion safely."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text

from app.cli.main import build_parser
from app.db import models
from app.observability.metrics import exposition
from app.reco import data as reco_data
from app.runtime.services import Services
from app.worker.jobs import JOBS, job_lists, job_reconcile, job_report, run_job, run_worker
from tests import reco_factories as f
from tests.conftest import GraphQLClient
from tests.factories import insert_rows
from tests.ingest_helpers import apply


def validating(services: Services, min_users: int = 20) -> Services:
    """`services` whose lists job validates models from `min_users` readers (tests' small data)."""
    reco = services.settings.reco.model_copy(update={"selection_min_users": min_users})
    return Services(
        settings=services.settings.model_copy(update={"reco": reco}),
        engine=services.engine,
        read_engine=services.read_engine,
    )


async def co_engagement(services: Services) -> None:
    """b1 and b2 are read together by many students; b3 alone."""
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 0.8}, "b2": {"t1": 0.5}, "b3": {"t2": 0.9}, "b4": {}})
    for i in range(8):
        await f.study_set(services, f"ss{i}", f"u{i}", ["t1"])
        await f.events(services, f"ss{i}", ["b1", "b2"] if i < 6 else ["b3"], "view")
        await f.daily_book(services, "b1", 1, days_ago=i)


async def test_two_replicas_run_each_job_once(services: Services) -> None:
    await co_engagement(services)
    names = list(JOBS)
    a, b = await asyncio.gather(
        run_worker(services, names, 60, once=True), run_worker(services, names, 60, once=True)
    )
    for name in names:
        outcomes = sorted(r["outcome"] for r in a + b if r["job"] == name)
        assert outcomes[0] == "ok" and outcomes[1] in ("skipped_locked", "skipped_fresh"), outcomes
    async with services.engine.connect() as conn:
        runs = dict((await conn.execute(text("SELECT job, runs FROM worker_jobs"))).all())
    # the lists job's model selection is recorded beside it, once
    assert runs == {**dict.fromkeys(names, 1), "lists.model": 1}


async def test_worker_processes_log_json_lines(services: Services, database_url: str) -> None:
    await co_engagement(services)
    env = {**os.environ, "DATABASE_URL": database_url, "BOOKBRIDGE_LOG_LEVEL": "INFO"}
    env.pop("REDIS_URL", None)
    cmd = [sys.executable, "-m", "app.cli.main", "worker", "--once", "--jobs", "lists,report"]
    procs = [
        await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    records = [
        json.loads(line)
        for _, err in outputs
        for line in err.decode().splitlines()
        if line.startswith("{")
    ]
    for job in ("lists", "report"):
        mine = [r for r in records if r["job"] == job]
        assert len(mine) == 2 and sorted(r["outcome"] for r in mine)[0] == "ok"
        assert all("duration_ms" in r and "replica" in r for r in mine)
    # the replica that ran the lists job prints its model choice
    printed = [out.decode() for out, _ in outputs]
    assert sum("collab model: ease_local" in p and "HYBRID weights:" in p for p in printed) == 1


async def test_lists_feed_similar_and_trending(services: Services, gql: GraphQLClient) -> None:
    await co_engagement(services)
    await run_worker(services, ["lists"], 60, once=True)
    similar = await gql.data(
        '{ similarBooks(bookId: "b1") { strategy items { book { id } reasons } } }'
    )
    items = similar["similarBooks"]["items"]
    assert items[0]["book"]["id"] == "b2"
    assert any("Students who engaged with 'Title of b1'" in r for r in items[0]["reasons"])
    trending = await gql.data(
        '{ trendingBooks(subjectId: "s1", first: 3) { strategy items { book { id } score reasons } } }'
    )
    top = trending["trendingBooks"]["items"][0]
    assert top["book"]["id"] == "b1" and top["reasons"] == ["Trending in Biology"]
    rec = await gql.data(
        '{ recommendations(studySetId: "ss6", strategy: COLLABORATIVE) { items { book { id } reasons } } }'
    )
    # ss6 read b3 only, which nobody else read: no co-engagement, so it falls back and says so
    first = rec["recommendations"]["items"][0]
    assert first["reasons"][0].startswith("Fallback to TOPIC (no co-engagement data")


async def test_reconcile_repairs_aggregates_from_raw_events(services: Services) -> None:
    await co_engagement(services)
    await insert_rows(
        services,
        models.EngagementDailyBook,
        [{"book_id": "b3", "day": f.day(30), "event_type": "save", "events": 99}],
    )
    result = await job_reconcile(services)
    assert result["repaired"]["book"] > 0
    async with services.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT book_id, sum(events) FROM engagement_daily_book GROUP BY 1 ORDER BY 1")
            )
        ).all()
    assert [tuple(r) for r in rows] == [("b1", 6), ("b2", 6), ("b3", 2)]
    assert (await job_reconcile(services))["repaired"] == {"book": 0, "topic": 0, "study_set": 0}


async def test_report_names_books_without_topics(services: Services) -> None:
    await co_engagement(services)
    await insert_rows(services, models.Topic, [{"id": "t9", "label": "Orphan"}])
    report = await job_report(services)
    assert report["books_without_topics"] == {"count": 1, "sample": ["b4"]}
    assert report["topics_without_books"] == {"count": 1, "sample": ["t9"]}


async def test_two_replicas_take_each_changed_analytics_day_once(
    services: Services, gql: GraphQLClient
) -> None:
    await co_engagement(services)
    await run_worker(services, ["analytics"], 60, once=True)  # the first run: every day
    await apply(gql, "engagement_events", [f.event_record("new", "ss0", "b3", f.NOW)])
    # interval 0: never fresh, so the lock alone keeps the replicas apart
    records = await asyncio.gather(*(run_job(services, "analytics", 0) for _ in range(2)))
    assert {r["outcome"] for r in records} <= {"ok", "skipped_locked", "skipped_fresh"}, records
    ok = [r["details"] for r in records if r["outcome"] == "ok"]
    assert ok and not any(d["full"] for d in ok)
    assert sum(d["days"] for d in ok) == 1
    incremental = await f.analytics_rows(services)
    assert (await run_worker(services, ["analytics"], 60, once=True, full=True))[0][
        "outcome"
    ] == "ok"
    assert await f.analytics_rows(services) == incremental


async def test_analytics_refreshes_racing_ingestion_miss_no_event(
    services: Services, gql: GraphQLClient
) -> None:
    await co_engagement(services)
    await run_job(services, "analytics", 0)

    async def ingest() -> None:
        for n in range(8):
            at = f.NOW - timedelta(days=n % 3)
            batch = [f.event_record(f"race{n}-{i}", f"ss{i}", "b1", at, "t1") for i in range(8)]
            await apply(gql, "engagement_events", batch)

    async def refresh() -> list[dict[str, Any]]:
        return [await run_job(services, "analytics", 0) for _ in range(6)]

    _, *refreshes = await asyncio.gather(ingest(), refresh(), refresh())
    records = [r for rs in refreshes for r in rs] + [await run_job(services, "analytics", 0)]
    assert "error" not in {r["outcome"] for r in records}
    incremental = await f.analytics_rows(services)
    assert len(incremental["topic"]) == 3  # all three days of the race are in
    await run_worker(services, ["analytics"], 60, once=True, full=True)
    assert await f.analytics_rows(services) == incremental


async def test_a_full_run_rebuilds_analytics_even_when_fresh(services: Services) -> None:
    await co_engagement(services)
    first = await run_worker(services, ["analytics"], 60, once=True)
    again = await run_worker(services, ["analytics"], 60, once=True)
    full = await run_worker(services, ["analytics"], 60, once=True, full=True)
    assert first[0]["details"]["full"] is True and again[0]["outcome"] == "skipped_fresh"
    assert full[0]["outcome"] == "ok" and full[0]["details"]["full"] is True
    assert full[0]["details"]["days"] == 1  # co_engagement's events are all of today
    assert build_parser().parse_args(["worker", "--once", "--full"]).full is True


async def test_lists_job_chooses_the_collab_model_by_validation(services: Services) -> None:
    """Two clusters of readers: every candidate is fitted on the validation split, the best
    validation NDCG@10 writes the lists, HYBRID's weights are chosen on the same split, and
    the choice is stored, served and exported."""
    await f.taxonomy(services)
    specs = {f"c{i:02d}": {"t1" if i % 2 == 0 else "t2": 0.5} for i in range(24)}
    await f.books(services, specs)
    rng = random.Random(3)
    for u in range(40):
        mine = [b for i, b in enumerate(specs) if i % 2 == u % 2]
        await f.study_set(services, f"ss{u}", f"u{u}", ["t1" if u % 2 == 0 else "t2"])
        await f.events(services, f"ss{u}", rng.sample(mine, 6), "view")
    tuned = validating(services)
    reco = tuned.settings.reco
    chosen = (await job_lists(tuned))["selection"]
    assert chosen["validation_users"] == 40
    scores = chosen["validation_ndcg"]
    assert {name.split(":")[0] for name in scores} == {"itemknn", "rp3beta", "ease_local", "ease"}
    best = max(scores, key=lambda name: scores[name])
    assert best.split(":")[0] == chosen["model"] and set(chosen["fit_seconds"]) == set(scores)
    assert chosen["weights"]["COLLABORATIVE"] == 1.0 and chosen["weights_ndcg"] > 0
    async with services.engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT last_details FROM worker_jobs WHERE job = 'lists.model'")
        )
        assert stored["model"] == chosen["model"] and stored["weights"] == chosen["weights"]
        assert await reco_data.tuned_weights(conn) == chosen["weights"]
        used = await reco_data.effective_settings(conn, reco)
        assert used.hybrid_weights == chosen["weights"]
        fixed = reco.model_copy(update={"tune_hybrid_weights": False})
        assert (await reco_data.effective_settings(conn, fixed)).hybrid_weights == (
            reco.hybrid_weights
        )
        # the lists are of the same cluster only
        pairs = (
            await conn.execute(
                text("SELECT book_id, neighbour_id FROM book_neighbours WHERE kind = 'collab'")
            )
        ).all()
    assert pairs and all(int(a[1:]) % 2 == int(b[1:]) % 2 for a, b in pairs)
    exported = exposition()[0].decode()
    assert f'bookbridge_reco_model_chosen{{model="{chosen["model"]}"}} 1.0' in exported
    for name in scores:
        assert f'bookbridge_reco_validation_ndcg{{candidate="{name}"}}' in exported
        assert f'bookbridge_reco_fit_seconds{{candidate="{name}"}}' in exported
    assert 'bookbridge_reco_hybrid_weight{component="COLLABORATIVE"} 1.0' in exported


async def test_lists_job_keeps_the_defaults_on_a_catalog_too_small_to_validate(
    services: Services,
) -> None:
    await co_engagement(services)  # 8 students
    chosen = (await job_lists(services))["selection"]
    assert chosen["model"] == "ease_local" and chosen["validation_ndcg"] == {}
    assert "fewer than" in chosen["reason"] and chosen["weights"] is None
    async with services.engine.connect() as conn:
        assert await reco_data.tuned_weights(conn) is None
        assert (
            await reco_data.effective_settings(conn, services.settings.reco)
        ).hybrid_weights == (services.settings.reco.hybrid_weights)
        count = await conn.scalar(
            text("SELECT count(*) FROM book_neighbours WHERE kind = 'collab'")
        )
    assert count and count > 0


async def test_the_servers_metrics_show_the_stored_model_selection(
    services: Services, http: httpx.AsyncClient
) -> None:
    """Another process's lists job: the server reads the stored choice at scrape time."""
    stored = {
        "model": "rp3beta",
        "validation_ndcg": {"rp3beta:alpha=0.75,beta=0.5": 0.25, "itemknn:shrink=10": 0.125},
        "fit_seconds": {"rp3beta:alpha=0.75,beta=0.5": 1.5, "itemknn:shrink=10": 0.5},
        "weights": {"COLLABORATIVE": 1.0, "CONTENT": 0.2},
    }
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO worker_jobs (job, runs, last_status, last_details) "
                "VALUES ('lists.model', 1, 'ok', CAST(:d AS jsonb))"
            ),
            {"d": json.dumps(stored)},
        )
    body = (await http.get("/metrics")).text
    assert 'bookbridge_reco_model_chosen{model="rp3beta"} 1.0' in body
    assert 'bookbridge_reco_model_chosen{model="itemknn"} 0.0' in body
    assert 'bookbridge_reco_validation_ndcg{candidate="itemknn:shrink=10"} 0.125' in body
    assert 'bookbridge_reco_fit_seconds{candidate="rp3beta:alpha=0.75,beta=0.5"} 1.5' in body
    assert 'bookbridge_reco_hybrid_weight{component="CONTENT"} 0.2' in body


async def test_hybrid_never_falls_below_the_chosen_collab_model_on_validation(
    services: Services,
) -> None:
    """Readers of two clusters who also stray into the other one: HYBRID's validated weights
    (the second collaborative model's among them) score at least the chosen model's validation
    NDCG@10, and the second model's lists are written exactly when HYBRID gives it a weight."""
    await f.taxonomy(services)
    specs = {f"c{i:02d}": {"t1" if i % 2 == 0 else "t2": 0.5} for i in range(30)}
    await f.books(services, specs)
    rng = random.Random(16)
    names = list(specs)
    for u in range(60):
        mine = [b for i, b in enumerate(names) if i % 2 == u % 2]
        picked = rng.sample(mine[: 8 + u % 7], 5) + rng.sample(names, 2)
        await f.study_set(services, f"ss{u}", f"u{u}", ["t1" if u % 2 == 0 else "t2"])
        await f.events(services, f"ss{u}", list(dict.fromkeys(picked)), "view")
    chosen = (await job_lists(validating(services)))["selection"]
    key = next(k for k in chosen["validation_ndcg"] if k.split(":")[0] == chosen["model"])
    best = max(chosen["validation_ndcg"].values())
    assert chosen["validation_ndcg"][key] == best
    assert chosen["weights_ndcg"] >= best - 1e-5  # rounding of the two figures only
    alt_weight = chosen["weights"].get("COLLABORATIVE_ALT", 0.0)
    async with services.engine.connect() as conn:
        alt = await conn.scalar(
            text("SELECT count(*) FROM book_neighbours WHERE kind = 'collab_alt'")
        )
    if alt_weight > 0:
        assert alt and chosen["second"].split(":")[0] in {"rp3beta", "itemknn"}
    else:
        assert alt == 0 and chosen["second"] is None


async def test_hybrid_reads_the_second_collab_lists_only_when_weighted(
    services: Services,
) -> None:
    """The `collab_alt` lists reach HYBRID with their weight; without one they are not read."""
    from app.reco.strategies import recommend_many

    await co_engagement(services)
    await insert_rows(
        services,
        models.BookNeighbour,
        [{"kind": "collab_alt", "book_id": "b1", "neighbour_id": "b4", "score": 0.7}],
    )
    base = services.settings.reco.model_copy(update={"tune_hybrid_weights": False})
    for weight, expected in ((1.0, ["b4"]), (0.0, [])):
        reco = base.model_copy(update={"hybrid_weights": {"COLLABORATIVE_ALT": weight}})
        async with services.read_engine.connect() as conn:
            found = await recommend_many(conn, reco, ["ss0"], "HYBRID", 10)
        items = found["ss0"].items
        assert [i.book_id for i in items] == expected
        if expected:
            assert items[0].reasons[0].startswith("Students who engaged with 'Title of b1'")
