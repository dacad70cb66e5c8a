"""What the resolvers call: recommendation lists through the cache, with experiments applied."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bookbridge.app.errors import ClientError, InvalidArgument
from bookbridge.app.reco import data, experiments, lists, strategies
from bookbridge.app.reco.data import StudentScope
from bookbridge.app.reco.strategies import RecList
from bookbridge.app.reco.tracing import span as reco_span

if TYPE_CHECKING:
    from bookbridge.app.services import Services


class NotFound(ClientError):
    code = "NOT_FOUND"


def check_first(services: Services, first: int | None) -> int:
    limit = services.settings.reco.max_first
    value = 10 if first is None else first
    if not 1 <= value <= limit:
        raise InvalidArgument("first", f"must be between 1 and {limit}")
    return value


async def recommendations(
    services: Services,
    study_set_id: str,
    first: int | None,
    strategy: str | None,
    scope: StudentScope | None = None,
) -> RecList:
    """A study set's list: the given strategy, else its experiment variant's, else HYBRID."""
    n = check_first(services, first)
    s = services.settings.reco
    with reco_span("reco.recommendations", {"reco.first": n}) as span:

        async def compute() -> dict[str, object] | None:
            connect = services.read_engine.connect
            async with connect() as conn:
                contexts = await data.study_set_contexts(
                    conn, [study_set_id], None, s.topic_match_limit
                )
            if study_set_id not in contexts:
                return None
            user_id = contexts[study_set_id].user_id
            chosen, experiment, variant = strategy or "HYBRID", None, None
            if strategy is None and s.experiments:
                exp = s.experiments[0]
                var = experiments.assign(exp, user_id)
                chosen, experiment, variant = var.strategy, exp.id, var.name
            found = await strategies.recommend_concurrently(connect, s, contexts, chosen, n)
            return {
                # The owner travels with the cached list: the visibility check of a cache hit
                # (below) needs no query.
                "user_id": user_id,
                "list": found[study_set_id].to_json(),
                "experiment": experiment,
                "variant": variant,
            }

        key = f"ss:{study_set_id}:{strategy or 'auto'}:{n}"
        with reco_span("reco.cache.lookup") as cache_span:
            value, source = await services.reco_cache.get_or_compute(key, study_set_id, compute)
            cache_span.set_attribute("reco.cache.source", source)
        span.set_attribute("reco.cache.source", source)
        if value is None or (scope and scope.user_id and value["user_id"] != scope.user_id):
            raise NotFound(f"No study set '{study_set_id}' is visible to you")
        result = RecList.from_json(value["list"])
        span.set_attribute("reco.strategy", result.strategy)
        if value["experiment"]:
            result.experiment, result.variant = str(value["experiment"]), str(value["variant"])
            async with services.engine.begin() as conn:
                await experiments.log_exposure(
                    conn,
                    result.experiment,
                    result.variant,
                    result.strategy,
                    study_set_id,
                    str(value["user_id"]),
                    [i.book_id for i in result.items],
                )
        return result


async def similar_books(services: Services, book_id: str, first: int | None) -> RecList:
    n = check_first(services, first)
    with reco_span("reco.similar_books", {"reco.book": book_id}):

        async def compute() -> dict[str, object] | None:
            async with services.read_engine.connect() as conn:
                return {"list": (await lists.similar_books(conn, book_id, n)).to_json()}

        value, _ = await services.reco_cache.get_or_compute(f"sim:{book_id}:{n}", "", compute)
        assert value is not None
        return RecList.from_json(value["list"])


async def trending_books(
    services: Services, subject_id: str | None, grade_id: str | None, first: int | None
) -> RecList:
    n = check_first(services, first)
    size = services.settings.reco.trending_size
    with reco_span("reco.trending_books"):

        async def compute() -> dict[str, object] | None:
            async with services.read_engine.connect() as conn:
                found = await lists.trending_books(conn, subject_id, grade_id, n, size)
                return {"list": found.to_json()}

        key = f"trend:{subject_id or ''}:{grade_id or ''}:{n}"
        value, _ = await services.reco_cache.get_or_compute(key, "", compute)
        assert value is not None
        return RecList.from_json(value["list"])


async def experiment_report(
    services: Services, experiment_id: str
) -> list[experiments.VariantResult]:
    async with services.read_engine.connect() as conn:
        return await experiments.report(
            conn, experiment_id, services.settings.reco.attribution_window_hours
        )
