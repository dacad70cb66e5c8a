"""The strategies (TOPIC, COLLABORATIVE, CONTENT, TRENDING, HYBRID), batched over study sets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.settings import RecoSettings
from app.core.viewer import StudentScope
from app.reco import data
from app.reco.data import OwnBooks, StudySetContext
from app.reco.scoring import (
    Component,
    Scored,
    blend,
    neighbour_rows_component,
    ranked,
    topic_component,
    trending_component,
)

STRATEGIES = ("TOPIC", "COLLABORATIVE", "CONTENT", "TRENDING", "HYBRID")
# COLLABORATIVE_ALT: HYBRID's second collaborative model (lists kind collab_alt), read only
# when the HYBRID weights give it a weight (the lists job's validation decides).
COMPONENTS = ("TOPIC", "COLLABORATIVE", "CONTENT", "TRENDING", "COLLABORATIVE_ALT")
NEIGHBOUR_KINDS = {
    "COLLABORATIVE": "collab",
    "CONTENT": "content",
    "COLLABORATIVE_ALT": "collab_alt",
}
FALLBACKS = {
    "TOPIC": ("TRENDING",),
    "COLLABORATIVE": ("TOPIC", "TRENDING"),
    "CONTENT": ("TOPIC", "TRENDING"),
    "TRENDING": (),
    "HYBRID": (),
}
WHY_EMPTY = {
    "TOPIC": "this study set has no topics",
    "COLLABORATIVE": "no co-engagement data for this study set yet",
    "CONTENT": "this study set has no books to compare with yet",
    "TRENDING": "nothing is trending yet",
}
COLLAB_PHRASE = "Students who engaged with '{title}' also engaged with this (strength {sim:.3f})"
CONTENT_PHRASE = "Similar in title, description, tags and topics to '{title}' ({sim:.2f})"


@dataclass(slots=True)
class Item:
    book_id: str
    score: float
    reasons: list[str]


@dataclass(slots=True)
class RecList:
    items: list[Item]
    strategy: str
    experiment: str | None = None
    variant: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [[i.book_id, i.score, i.reasons] for i in self.items],
            "strategy": self.strategy,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RecList:
        return cls([Item(b, s, r) for b, s, r in raw["items"]], raw["strategy"])


@dataclass(slots=True)
class Job:
    ctx: StudySetContext
    own: OwnBooks
    components: dict[str, Component] = field(default_factory=dict)


async def recommend_many(
    conn: AsyncConnection,
    settings: RecoSettings,
    study_set_ids: Sequence[str],
    strategy: str,
    first: int,
    scope: StudentScope | None = None,
    contexts: dict[str, StudySetContext] | None = None,
) -> dict[str, RecList]:
    """Top-`first` lists for each known study set (unknown or out-of-scope ids are absent);
    `contexts`, when the caller has already read them, saves that query."""
    if contexts is None:
        contexts = await data.study_set_contexts(
            conn, study_set_ids, scope, settings.topic_match_limit
        )
    if not contexts:
        return {}
    jobs = await _jobs(conn, settings, contexts)
    await _fill_for(conn, settings, jobs, strategy, first)
    return {job.ctx.id: _assemble(settings, job, strategy, first) for job in jobs}


async def _jobs(
    conn: AsyncConnection, settings: RecoSettings, contexts: dict[str, StudySetContext]
) -> list[Job]:
    """One job per study set, with its own books (seeds and excluded) read."""
    own = await data.own_books(
        conn, list(contexts.values()), settings.exclude_event_types, settings.seed_books
    )
    return [Job(ctx, own[sid]) for sid, ctx in contexts.items()]


async def recommend_concurrently(
    connect: Callable[[], AsyncConnection],
    settings: RecoSettings,
    contexts: dict[str, StudySetContext],
    strategy: str,
    first: int,
    own: dict[str, OwnBooks] | None = None,
) -> dict[str, RecList]:
    """`recommend_many` for a request: HYBRID reads its components at once, one pooled
    connection each. No task waits for a connection while it holds one (the caller must not
    hold one either), so a full pool queues requests instead of deadlocking them. `own`, when
    the caller has read the study sets' own books (`data.study_set_inputs`), saves that query."""
    if own is not None:
        jobs = [Job(ctx, own[sid]) for sid, ctx in contexts.items()]
    elif strategy == "HYBRID":
        async with connect() as conn:
            jobs = await _jobs(conn, settings, contexts)
    if strategy != "HYBRID":
        async with connect() as conn:
            if own is None:
                return await recommend_many(
                    conn, settings, list(contexts), strategy, first, None, contexts
                )
            await _fill_for(conn, settings, jobs, strategy, first)
            return {job.ctx.id: _assemble(settings, job, strategy, first) for job in jobs}

    async def fill_apart(name: str) -> None:
        if _unused(settings, name):
            _fill_unused(name, jobs)
            return
        async with connect() as conn:
            await _fill(conn, settings, name, jobs)

    await asyncio.gather(*(fill_apart(name) for name in COMPONENTS))
    return {job.ctx.id: _assemble(settings, job, strategy, first) for job in jobs}


async def collect(
    conn: AsyncConnection, settings: RecoSettings, study_set_ids: Sequence[str]
) -> list[Job]:
    """Study sets with every component filled (TOPIC, COLLABORATIVE, CONTENT, TRENDING)."""
    contexts = await data.study_set_contexts(conn, study_set_ids, None, settings.topic_match_limit)
    jobs = await _jobs(conn, settings, contexts)
    for name in COMPONENTS:
        await _fill(conn, settings, name, jobs)
    return jobs


async def recommend_all(
    conn: AsyncConnection, settings: RecoSettings, study_set_ids: Sequence[str], first: int
) -> dict[str, dict[str, RecList]]:
    """Every strategy's lists at once (each component computed once): the offline evaluation."""
    jobs = await collect(conn, settings, study_set_ids)
    return {
        strategy: {j.ctx.id: _assemble(settings, j, strategy, first) for j in jobs}
        for strategy in STRATEGIES
    }


async def _fill_for(
    conn: AsyncConnection,
    s: RecoSettings,
    jobs: list[Job],
    strategy: str,
    first: int,
) -> None:
    """The strategy's components; each fallback only for the lists still short of `first`."""
    if strategy == "HYBRID":
        for name in COMPONENTS:
            await _fill(conn, s, name, jobs)
        return
    await _fill(conn, s, strategy, jobs)
    have = {j.ctx.id: j.components[strategy].books() - j.own.excluded for j in jobs}
    for fallback in FALLBACKS[strategy]:
        short = [j for j in jobs if len(have[j.ctx.id]) < first]
        if not short:
            break
        await _fill(conn, s, fallback, short)
        for j in short:
            have[j.ctx.id] |= j.components[fallback].books() - j.own.excluded
    for j in jobs:
        for fallback in FALLBACKS[strategy]:
            j.components.setdefault(fallback, Component())


def _unused(s: RecoSettings, name: str) -> bool:
    """A component only HYBRID reads, and it has no weight there: not worth a query."""
    return name == "COLLABORATIVE_ALT" and s.hybrid_weights.get(name, 0.0) <= 0


def _fill_unused(name: str, jobs: list[Job]) -> None:
    for j in jobs:
        j.components[name] = Component()


async def _fill(conn: AsyncConnection, s: RecoSettings, name: str, jobs: list[Job]) -> None:
    if _unused(s, name):
        _fill_unused(name, jobs)
    elif name == "TOPIC":
        topics = sorted({t for j in jobs for t in j.ctx.topics})
        cands = await data.topic_candidates(conn, topics, s.candidates_per_topic)
        for j in jobs:
            j.components[name] = topic_component(j.ctx.topics, cands, s.half_life_days)
    elif name in NEIGHBOUR_KINDS:
        kind = NEIGHBOUR_KINDS[name]
        phrase = CONTENT_PHRASE if name == "CONTENT" else COLLAB_PHRASE
        own = {j.ctx.id: j.own for j in jobs}
        found = await data.neighbour_scores(conn, kind, own, s.candidates_per_strategy)
        for j in jobs:
            j.components[name] = neighbour_rows_component(found[j.ctx.id], phrase)
    elif name == "TRENDING":
        await _fill_trending(conn, s, jobs)


async def _fill_trending(conn: AsyncConnection, s: RecoSettings, jobs: list[Job]) -> None:
    scopes = sorted({sc for j in jobs for sc in _chain(j.ctx)})
    lists, names = await data.trending(conn, scopes, s.trending_size)
    for j in jobs:
        j.components["TRENDING"] = _trending_of(j.ctx, lists, names)


def _chain(ctx: StudySetContext) -> list[tuple[str, str]]:
    """The trend lists a study set may use, first choice first."""
    sub, grade = ctx.subject_id or "", ctx.grade_id or ""
    return list(dict.fromkeys([(sub, grade), (sub, ""), ("", "")]))


def _trending_of(
    ctx: StudySetContext,
    lists: Mapping[tuple[str, str], Sequence[tuple[str, float]]],
    names: Mapping[str, str],
) -> Component:
    """The first trend list of the study set's chain that has books."""
    for sub, grade in _chain(ctx):
        if lists.get((sub, grade)):
            where = " and ".join(
                n for n in (names.get(f"s:{sub}", ""), names.get(f"g:{grade}", "")) if n
            )
            return trending_component(
                lists[(sub, grade)], f"in {where}" if where else "across all subjects"
            )
    return Component()


def hybrid_lists(
    settings: RecoSettings, inputs: data.HybridInputs, first: int
) -> dict[str, RecList]:
    """HYBRID's top-`first` list of each study set of `inputs` (`data.hybrid_inputs`): the
    lists `recommend_concurrently` gives for HYBRID, from one statement's rows."""
    s = data.with_weights(settings, inputs.weights)
    out = {}
    for sid, ctx in inputs.contexts.items():
        job = Job(ctx, OwnBooks([], inputs.excluded[sid]))
        job.components["TOPIC"] = topic_component(ctx.topics, inputs.candidates, s.half_life_days)
        for name, kind in NEIGHBOUR_KINDS.items():
            if _unused(s, name):
                job.components[name] = Component()
                continue
            phrase = CONTENT_PHRASE if name == "CONTENT" else COLLAB_PHRASE
            rows = inputs.neighbours.get(kind, {}).get(sid, [])
            job.components[name] = neighbour_rows_component(rows, phrase)
        job.components["TRENDING"] = _trending_of(ctx, inputs.trending, inputs.names)
        out[sid] = _assemble(s, job, "HYBRID", first)
    return out


def _assemble(s: RecoSettings, job: Job, strategy: str, first: int) -> RecList:
    exclude = job.own.excluded
    if strategy == "HYBRID":
        rows = ranked(blend(job.components, s.hybrid_weights), exclude, first)
        return RecList([Item(b, sc.score, sc.reasons) for b, sc in rows], strategy)
    rows = ranked(job.components[strategy], exclude, first)
    items = [Item(b, sc.score, sc.reasons) for b, sc in rows]
    why = WHY_EMPTY[strategy] if not items else f"fewer than {first} {strategy} results"
    for fallback in FALLBACKS[strategy]:
        if len(items) >= first:
            break
        have = {i.book_id for i in items}
        extra = ranked(job.components[fallback], exclude | have, first - len(items))
        items.extend(_fallback_items(items, extra, fallback, why))
        why = f"{why}; then {WHY_EMPTY[fallback]}"
    return RecList(items, strategy)


def _fallback_items(
    primary: list[Item], extra: list[tuple[str, Scored]], name: str, why: str
) -> list[Item]:
    """Fallback items rank below the primary ones: scores rescaled under the last primary score."""
    if not extra:
        return []
    floor = primary[-1].score if primary else None
    top = max(sc.score for _, sc in extra) or 1.0
    out = []
    for book, sc in extra:
        score = sc.score if floor is None else 0.5 * floor * sc.score / top
        out.append(Item(book, score, [f"Fallback to {name} ({why})", *sc.reasons]))
    return out
