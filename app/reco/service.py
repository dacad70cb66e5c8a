"""What the resolvers call: recommendation lists through the cache, with experiments applied."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.errors import InvalidArgument, NotFound
from app.core.settings import RecoSettings
from app.core.viewer import StudentScope
from app.db import driver
from app.reco import data, experiments, lists, stored, strategies
from app.reco.cache import Payload
from app.reco.strategies import RecList
from app.reco.tracing import span as reco_span

if TYPE_CHECKING:
    from app.runtime.services import Services


LISTS = "lists"  # the cache group of study-set lists


def check_first(services: Services, first: int | None) -> int:
    limit = services.settings.reco.max_first
    value = 10 if first is None else first
    if not 1 <= value <= limit:
        raise InvalidArgument("first", f"must be between 1 and {limit}")
    return value


@dataclass(frozen=True, slots=True)
class ListKey:
    """One study set's list as asked for: what the cache and the request's loader key it by.
    `first` is already checked; `strategy` None means the experiment's or HYBRID."""

    study_set_id: str
    first: int
    strategy: str | None = None

    @property
    def cache_key(self) -> str:
        return f"ss:{self.study_set_id}:{self.strategy or 'auto'}:{self.first}"

    @classmethod
    def parse(cls, cache_key: str) -> ListKey:
        """The key a `cache_key` was made of (a study set id may itself hold colons)."""
        study_set, strategy, first = cache_key.removeprefix("ss:").rsplit(":", 2)
        return cls(study_set, int(first), None if strategy == "auto" else strategy)


async def recommendations(
    services: Services,
    study_set_id: str,
    first: int | None,
    strategy: str | None,
    scope: StudentScope | None = None,
) -> RecList:
    """A study set's list: the given strategy, else its experiment variant's, else HYBRID."""
    n = check_first(services, first)
    with reco_span("reco.recommendations", {"reco.first": n}) as span:
        [(found, source)] = await _lists(services, [ListKey(study_set_id, n, strategy)], scope)
        span.set_attribute("reco.cache.source", source)
        if isinstance(found, NotFound):
            raise found
        span.set_attribute("reco.strategy", found.strategy)
        return found


async def recommendations_many(
    services: Services, keys: Sequence[ListKey], scope: StudentScope | None = None
) -> list[RecList | NotFound]:
    """Many study sets' lists at once (a page of study sets): the same lists, cache entries and
    exposures as `recommendations` gives one by one, with the cache misses computed together.
    A study set out of `scope` or unknown gets a NotFound in its place."""
    with reco_span("reco.recommendations_many", {"reco.keys": len(keys)}) as span:
        served = await _lists(services, keys, scope)
        if span.is_recording():
            span.set_attribute("reco.cache.source", ",".join(sorted({s for _, s in served})))
        return [found for found, _ in served]


async def _lists(
    services: Services, keys: Sequence[ListKey], scope: StudentScope | None
) -> list[tuple[RecList | NotFound, str]]:
    """The lists through the cache (and where each came from), checked against `scope`, with
    the exposures of the experiment lists among them logged."""

    async def compute(cache_keys: list[str]) -> dict[str, Payload | None]:
        # any list key, not only this request's: the group's refreshes are merged (cache.py)
        return await _compute(services, [ListKey.parse(c) for c in cache_keys])

    lookups = [(k.cache_key, k.study_set_id) for k in keys]
    # the cache's own span (`reco.cache.lookup`) covers what leaves the process; the caller's
    # span says where the lists came from (`reco.cache.source`)
    cached = await services.reco_cache.get_or_compute_many(lookups, compute, LISTS)
    served = [_visible(k, value, scope) for k, (value, _) in zip(keys, cached, strict=True)]
    exposures = [
        _exposure(k, value, found)
        for k, (value, _), found in zip(keys, cached, served, strict=True)
    ]
    await _log_exposures(services, [x for x in exposures if x is not None])
    return [(found, source) for found, (_, source) in zip(served, cached, strict=True)]


async def _compute(services: Services, keys: Sequence[ListKey]) -> dict[str, Payload | None]:
    """Fresh lists for the keys the cache missed: one read of their study sets, then one
    batched computation per (strategy, first) among them, side by side. No connection is held
    while another is awaited (see strategies.recommend_concurrently)."""
    s = services.settings.reco
    connect = services.read_engine.connect
    ids = sorted({k.study_set_id for k in keys})
    out: dict[str, Payload | None] = {k.cache_key: None for k in keys}
    if all(_plain_hybrid(s, k) for k in keys):
        await _compute_hybrid(services, keys, ids, out)
        return out
    groups: dict[tuple[str, int], list[tuple[ListKey, _Choice]]] = {}
    async with connect() as conn:
        # contexts, own books and the lists job's validated weights: one statement
        inputs = await data.study_set_inputs(conn, ids, s)
    contexts = inputs.contexts
    for key in keys:
        ctx = contexts.get(key.study_set_id)
        if ctx is not None:
            choice = _choose(s, key.strategy, ctx.user_id)
            groups.setdefault((choice.strategy, key.first), []).append((key, choice))
    if any(strategy == "HYBRID" for strategy, _ in groups):
        s = data.with_weights(s, inputs.weights)

    async def compute_group(
        strategy: str, first: int, members: list[tuple[ListKey, _Choice]]
    ) -> None:
        mine = {k.study_set_id: contexts[k.study_set_id] for k, _ in members}
        own = {sid: inputs.own[sid] for sid in mine}
        found = await strategies.recommend_concurrently(connect, s, mine, strategy, first, own)
        for key, choice in members:
            out[key.cache_key] = {
                # The owner travels with the cached list: the visibility check of a cache hit
                # (_visible) needs no query.
                "user_id": mine[key.study_set_id].user_id,
                "list": found[key.study_set_id].to_json(),
                "experiment": choice.experiment,
                "variant": choice.variant,
            }

    await asyncio.gather(*(compute_group(st, n, m) for (st, n), m in groups.items()))
    return out


def _plain_hybrid(s: RecoSettings, key: ListKey) -> bool:
    """The key's list is HYBRID's, outside any experiment."""
    return key.strategy == "HYBRID" or (key.strategy is None and not s.experiments)


async def _compute_hybrid(
    services: Services, keys: Sequence[ListKey], ids: list[str], out: dict[str, Payload | None]
) -> None:
    """HYBRID lists outside experiments (the default): every input in one statement
    (`data.hybrid_inputs`), then scored here; the lists `compute_group` gives for them."""
    s = services.settings.reco

    fetch = driver.fetcher(services.read_engine)

    if s.stored_list_max_age_seconds <= 0:  # no stored lists: computed for the request
        inputs = await data.hybrid_inputs(fetch, ids, s)
        for first in sorted({k.first for k in keys}):
            found = strategies.hybrid_lists(s, inputs, first)
            for key in keys:
                if key.first == first and key.study_set_id in found:
                    user_id = inputs.contexts[key.study_set_id].user_id
                    out[key.cache_key] = _hybrid_payload(user_id, found[key.study_set_id])
        return
    # The stored lists first (app/reco/stored.py): what they lack or hold stale is computed at
    # max_first, stored, and sliced like them, so both read paths serve the very same list.
    got = await stored.read(fetch, ids, stored.service_max_age(s))
    missing = sorted(sid for sid, row in got.sets.items() if row.found is None)
    if missing:
        inputs = await data.hybrid_inputs(fetch, missing, s)
        computed = strategies.hybrid_lists(s, inputs, s.max_first)
        # stored after the response when a background slot is free (stored.WriteBack)
        await services.stored_writes.submit(fetch, got, computed)
        for sid, made in computed.items():
            got.sets[sid].found = made
    for key in keys:
        row = got.sets.get(key.study_set_id)
        if row is not None and row.found is not None:
            listed = stored.prefix(row.found, key.first)
            out[key.cache_key] = _hybrid_payload(row.user_id, listed)


def _hybrid_payload(user_id: str, found: RecList) -> Payload:
    return {"user_id": user_id, "list": found.to_json(), "experiment": None, "variant": None}


@dataclass(frozen=True, slots=True)
class _Choice:
    strategy: str
    experiment: str | None = None
    variant: str | None = None


def _choose(s: RecoSettings, strategy: str | None, user_id: str) -> _Choice:
    """The strategy asked for; else the first experiment's variant of this student; else HYBRID."""
    if strategy is not None:
        return _Choice(strategy)
    if not s.experiments:
        return _Choice("HYBRID")
    experiment = s.experiments[0]
    variant = experiments.assign(experiment, user_id)
    return _Choice(variant.strategy, experiment.id, variant.name)


def _visible(key: ListKey, value: Payload | None, scope: StudentScope | None) -> RecList | NotFound:
    """The cached list, if its study set exists and the scope may see it (its owner is cached
    with it); else NOT_FOUND, the same for others' study sets as for unknown ones."""
    if value is None or (scope and scope.user_id and value["user_id"] != scope.user_id):
        return NotFound(f"No study set '{key.study_set_id}' is visible to you")
    result = RecList.from_json(value["list"])
    if value["experiment"]:
        result.experiment, result.variant = str(value["experiment"]), str(value["variant"])
    return result


def _exposure(
    key: ListKey, value: Payload | None, found: RecList | NotFound
) -> experiments.Exposure | None:
    """What to log of a list an experiment chose; cache hits too (each list served counts)."""
    if isinstance(found, NotFound) or value is None or found.experiment is None:
        return None
    books = [i.book_id for i in found.items]
    user_id = str(value["user_id"])
    variant = found.variant or ""
    return experiments.Exposure(
        found.experiment, variant, found.strategy, key.study_set_id, user_id, books
    )


async def _log_exposures(services: Services, exposures: list[experiments.Exposure]) -> None:
    if exposures:
        async with services.engine.begin() as conn:
            await experiments.log_exposures(conn, exposures)


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
