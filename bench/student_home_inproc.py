"""In-process A/B of student_home's CPU per page: its two reads through SQLAlchemy (before) or on
the pooled asyncpg connection (after, app.db.driver), alternating rounds in one process.

    python -m bench.student_home_inproc [postgresql://.../hm_bench] [redis://.../12]

Reuses a seeded bench database (`python -m bench` seeds it); rate limits off, as in the bench.
Checks first that both give byte-identical pages for every student, then prints the median
process CPU per page (includes the driver and the kernel's send/recv) of each.
"""

import asyncio
import statistics
import sys
import time

import asyncpg
import orjson

from app.core.settings import Settings, normalize_database_url
from app.core.viewer import Viewer
from app.db import study
from app.runtime.services import Services
from bench import scenarios
from graphql_schema.schema import build_schema
from graphql_schema.types.context import Context
from loaders.base import ReadLoader
from loaders.catalog import BookWithPublisherByIdLoader

URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/bb_bench"
REDIS = sys.argv[2] if len(sys.argv) > 2 else None
new_read, new_load = study.read_study_sets, BookWithPublisherByIdLoader.load_batch


async def old_read(engine, flt, page, viewer):
    async with engine.connect() as conn:
        return await study.list_study_sets(conn, flt, page, viewer)


def use(old):
    study.read_study_sets = old_read if old else new_read
    BookWithPublisherByIdLoader.load_batch = ReadLoader.load_batch if old else new_load


async def main():
    settings = Settings(
        bookbridge_env="test", database_url=normalize_database_url(URL), redis_url=REDIS
    )
    security = settings.security.model_copy(
        update={"rate_limit_cost_per_minute": 0, "rate_limit_anonymous_cost_per_minute": 0}
    )
    settings = settings.model_copy(update={"security": security})
    services = Services.create(settings)
    schema = build_schema(settings)
    conn = await asyncpg.connect(URL)
    users = [
        r[0]
        for r in await conn.fetch(
            "SELECT DISTINCT s.user_id FROM study_sets s WHERE EXISTS (SELECT 1 FROM study_set_topics t WHERE t.study_set_id = s.id) ORDER BY 1 LIMIT 200"
        )
    ]
    await conn.close()
    viewers = [Viewer(role="student", user_id=u) for u in users]

    async def one(v):
        r = await schema.execute(
            scenarios.STUDENT_HOME, {}, context_value=Context.create(services, viewer=v)
        )
        assert not r.errors, r.errors
        return orjson.dumps({"data": r.data})

    bodies = {}
    for old in (True, False):
        use(old)
        bodies[old] = [await one(v) for v in viewers]
    assert bodies[True] == bodies[False], "different pages"
    got = {True: [], False: []}
    n = 400
    for _rnd in range(5):
        for old in (True, False):
            use(old)
            cpu = time.process_time()
            for i in range(n):
                await one(viewers[i % len(viewers)])
            got[old].append((time.process_time() - cpu) / n * 1e6)
    for old in (True, False):
        print(
            ("before (SQLAlchemy reads)" if old else "after (driver reads)"),
            f"CPU us/page median {statistics.median(got[old]):.0f}  rounds {[round(x) for x in got[old]]}",
        )
    print(
        "ratio after/before %.3f" % (statistics.median(got[False]) / statistics.median(got[True]))
    )
    await services.close()


asyncio.run(main())
