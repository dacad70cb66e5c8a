"""Data access for recommendations: study-set context, a student's own books, candidates, lists.

Every function is batched over keys (one query for many study sets or books) so the resolver, the
loaders and the offline evaluation share one code path. Engagement counts come from aggregates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.settings import RecoSettings
from app.core.viewer import StudentScope
from app.reco.tracing import sql_span


@dataclass(slots=True)
class StudySetContext:
    id: str
    user_id: str
    subject_id: str | None
    grade_id: str | None
    title: str
    topics: dict[str, str] = field(default_factory=dict)  # topic id -> label
    topic_source: str = "explicit"  # or "title" / "subject" when matched, "none"


@dataclass(frozen=True, slots=True)
class OwnBooks:
    """A study set's own engaged books (most recent first) and its student's excluded books."""

    seeds: list[tuple[str, str]]  # (book id, title)
    excluded: frozenset[str]


@dataclass(frozen=True, slots=True)
class Candidate:
    book_id: str
    weight: float
    events: int
    decayed: float
    base_score: float  # ln(events + 1) x recency factor, from book_popularity


_CONTEXTS = text(
    """
    SELECT s.id, s.user_id, s.subject_id, s.grade_id, s.title,
           coalesce(array_agg(t.id ORDER BY t.id) FILTER (WHERE t.id IS NOT NULL), '{}') AS ids,
           coalesce(array_agg(t.label ORDER BY t.id) FILTER (WHERE t.id IS NOT NULL), '{}') AS labels
    FROM study_sets s
    LEFT JOIN study_set_topics st ON st.study_set_id = s.id
    LEFT JOIN topics t ON t.id = st.topic_id
    WHERE s.id = ANY(:ids) AND (CAST(:user_id AS text) IS NULL OR s.user_id = :user_id)
    GROUP BY s.id
    """
)

# Topics a study set's title matches (any of its words, English stemming), within its subject
# and grade, or any topic of its subject; `q.query` is the title's query. Shared by the
# per-strategy read (`_MATCH_TOPICS`) and HYBRID's one-statement inputs (`_HYBRID_BASE`), so
# both match alike. Needs the study set as `s`.
_TITLE_TOPICS = """
        FROM topics t,
             LATERAL (SELECT to_tsquery('simple', coalesce(nullif(array_to_string(
                 tsvector_to_array(to_tsvector('english', s.title)), ' | '), ''), 'zzznomatch'))
                 AS query) q
        WHERE (s.subject_id IS NULL OR t.subject_id IS NULL OR t.subject_id = s.subject_id)
          AND (s.grade_id IS NULL OR t.grade_id IS NULL OR t.grade_id = s.grade_id)
          AND (q.query @@ to_tsvector('english', t.label)
               OR (s.subject_id IS NOT NULL AND t.subject_id = s.subject_id))
"""

_MATCH_TOPICS = text(
    """
    SELECT s.id AS study_set_id, m.id, m.label, m.matched
    FROM study_sets s
    CROSS JOIN LATERAL (
        SELECT t.id, t.label, q.query @@ to_tsvector('english', t.label) AS matched,
               ts_rank(to_tsvector('english', t.label), q.query) AS rank
"""
    + _TITLE_TOPICS
    + """        ORDER BY matched DESC, rank DESC, t.id
        LIMIT :limit
    ) m
    WHERE s.id = ANY(:ids)
    """
)


@sql_span("study_set_contexts")
async def study_set_contexts(
    conn: AsyncConnection,
    ids: Sequence[str],
    scope: StudentScope | None = None,
    match_limit: int = 5,
) -> dict[str, StudySetContext]:
    """Study sets with their canonical topics: explicit ones, else matched from title/subject."""
    user_id = scope.user_id if scope else None
    rows = (await conn.execute(_CONTEXTS, {"ids": list(ids), "user_id": user_id})).all()
    out = {
        r.id: StudySetContext(
            r.id,
            r.user_id,
            r.subject_id,
            r.grade_id,
            r.title,
            dict(zip(r.ids, r.labels, strict=True)),
        )
        for r in rows
    }
    await _match_topics(conn, out, match_limit)
    return out


async def _match_topics(
    conn: AsyncConnection, out: dict[str, StudySetContext], match_limit: int
) -> None:
    """Study sets without explicit topics get topics matched from their title or subject."""
    unresolved = [sid for sid, ctx in out.items() if not ctx.topics]
    if unresolved:
        params = {"ids": unresolved, "limit": match_limit}
        for r in (await conn.execute(_MATCH_TOPICS, params)).all():
            ctx = out[r.study_set_id]
            ctx.topics[r.id] = r.label
            if ctx.topic_source != "title":
                ctx.topic_source = "title" if r.matched else "subject"
        for sid in unresolved:
            if not out[sid].topics:
                out[sid].topic_source = "none"


_OWN_BOOKS = text(
    """
    SELECT e.study_set_id, s.user_id, e.book_id, b.title, max(e.occurred_at) AS last_at,
           bool_or(e.event_type = ANY(:exclude)) AS excluded
    FROM study_sets s
    JOIN engagement_events e ON e.study_set_id = s.id
    JOIN books b ON b.id = e.book_id
    WHERE s.user_id = ANY(:users)
    GROUP BY e.study_set_id, s.user_id, e.book_id, b.title
    """
)


@sql_span("own_books")
async def own_books(
    conn: AsyncConnection,
    contexts: Sequence[StudySetContext],
    exclude_types: Sequence[str],
    seed_limit: int,
) -> dict[str, OwnBooks]:
    """Per study set: its own books as seeds, and every book its student has finished."""
    users = sorted({c.user_id for c in contexts})
    params = {"users": users, "exclude": list(exclude_types)}
    seeds: dict[str, list[tuple[datetime, str, str]]] = {}
    excluded: dict[str, set[str]] = {}
    rows = (await conn.execute(_OWN_BOOKS, params)).all()
    for study_set_id, user_id, book_id, title, last_at, is_excluded in rows:
        seeds.setdefault(study_set_id, []).append((last_at, book_id, title))
        if is_excluded:
            excluded.setdefault(user_id, set()).add(book_id)
    out = {}
    for c in contexts:
        mine = sorted(seeds.get(c.id, []), key=lambda s: (s[0], s[1]), reverse=True)[:seed_limit]
        out[c.id] = OwnBooks(
            [(book, title) for _, book, title in mine], frozenset(excluded.get(c.user_id, ()))
        )
    return out


_INPUTS = text(
    """
    WITH ss AS (
        SELECT id, user_id, subject_id, grade_id, title FROM study_sets WHERE id = ANY(:ids)
    ), own AS (
        -- the context sets' own books (seeds), and every book their students finished
        SELECT e.study_set_id, s.user_id, e.book_id, b.title, max(e.occurred_at) AS last_at,
               bool_or(e.event_type = ANY(:exclude)) AS excluded
        FROM study_sets s
        JOIN engagement_events e ON e.study_set_id = s.id
        JOIN books b ON b.id = e.book_id
        WHERE s.user_id IN (SELECT user_id FROM ss)
          AND (e.study_set_id IN (SELECT id FROM ss) OR e.event_type = ANY(:exclude))
        GROUP BY e.study_set_id, s.user_id, e.book_id, b.title
    )
    SELECT 'c' AS kind, ss.id, ss.user_id, ss.subject_id, ss.grade_id, ss.title,
           coalesce(t.ids, '{}') AS ids, coalesce(t.labels, '{}') AS labels,
           NULL::timestamptz AS last_at, NULL::boolean AS excluded
    FROM ss LEFT JOIN LATERAL (
        SELECT array_agg(t.id ORDER BY t.id) AS ids, array_agg(t.label ORDER BY t.id) AS labels
        FROM study_set_topics st JOIN topics t ON t.id = st.topic_id
        WHERE st.study_set_id = ss.id
    ) t ON true
    UNION ALL
    SELECT 'o', study_set_id, user_id, book_id, NULL, title, NULL, NULL, last_at, excluded
    FROM own
    UNION ALL
    SELECT 'w', NULL, NULL, NULL, NULL, (last_details -> 'weights')::text, NULL, NULL, NULL, NULL
    FROM worker_jobs WHERE job = :job AND last_status = 'ok'
    """
)


@dataclass(slots=True)
class Inputs:
    """What a batch of lists is computed from, read in one statement (`study_set_inputs`)."""

    contexts: dict[str, StudySetContext]
    own: dict[str, OwnBooks]
    weights: dict[str, float] | None  # HYBRID weights the lists job validated, if any


@sql_span("study_set_inputs")
async def study_set_inputs(
    conn: AsyncConnection, ids: Sequence[str], settings: RecoSettings
) -> Inputs:
    """`study_set_contexts` (any student's), `own_books` of those study sets and
    `tuned_weights`, in one statement instead of three round trips one after the other (a
    second one only for study sets whose topics must be matched from their title)."""
    params = {
        "ids": list(ids),
        "exclude": list(settings.exclude_event_types),
        "job": SELECTION_ROW,
    }
    contexts: dict[str, StudySetContext] = {}
    seeds: dict[str, list[tuple[datetime, str, str]]] = {}
    excluded: dict[str, set[str]] = {}
    weights: dict[str, float] | None = None
    for kind, sid, user_id, a, b, title, ids_, labels, last_at, is_excluded in (
        await conn.execute(_INPUTS, params)
    ).all():
        if kind == "c":
            topics = dict(zip(ids_, labels, strict=True))
            contexts[sid] = StudySetContext(sid, user_id, a, b, title, topics)
        elif kind == "o":
            seeds.setdefault(sid, []).append((last_at, a, title))
            if is_excluded:
                excluded.setdefault(user_id, set()).add(a)
        elif title:
            raw = orjson.loads(title)
            if isinstance(raw, dict) and raw:
                weights = {str(k): float(v) for k, v in raw.items()}
    await _match_topics(conn, contexts, settings.topic_match_limit)
    own = {}
    for c in contexts.values():
        mine = sorted(seeds.get(c.id, []), key=lambda x: (x[0], x[1]), reverse=True)
        own[c.id] = OwnBooks(
            [(book, t) for _, book, t in mine[: settings.seed_books]],
            frozenset(excluded.get(c.user_id, ())),
        )
    return Inputs(contexts, own, weights)


def with_weights(settings: RecoSettings, weights: dict[str, float] | None) -> RecoSettings:
    """`effective_settings` for weights already read (`Inputs.weights`)."""
    if not settings.tune_hybrid_weights or weights is None:
        return settings
    return settings.model_copy(update={"hybrid_weights": weights})


_TOPIC_CANDIDATES = text(
    """
    SELECT t.topic_id, c.book_id, c.weight, c.events, c.decayed, c.base_score
    FROM unnest(CAST(:topics AS text[])) AS t(topic_id)
    CROSS JOIN LATERAL (
        SELECT m.book_id, m.weight, coalesce(p.events, 0) AS events,
               coalesce(p.decayed, 0) AS decayed, coalesce(p.base_score, 0) AS base_score
        FROM topic_book_mappings m
        LEFT JOIN book_popularity p ON p.book_id = m.book_id
        WHERE m.topic_id = t.topic_id
        ORDER BY m.weight * coalesce(p.base_score, 0) DESC, m.weight DESC, m.book_id
        LIMIT :limit
    ) c
    """
)


_TOPIC_TOP = text(
    "SELECT topic_id, book_id, weight, events, decayed, base_score FROM topic_top_books "
    "WHERE topic_id = ANY(:topics) AND rank <= :limit ORDER BY topic_id, rank"
)


@sql_span("topic_candidates")
async def topic_candidates(
    conn: AsyncConnection, topic_ids: Sequence[str], limit: int
) -> dict[str, list[Candidate]]:
    """The best `limit` books of each topic by weight x ln(engagement + 1) x recency: the
    worker's ranking, or (for topics it has not ranked yet) the same ranking computed live."""
    out: dict[str, list[Candidate]] = {t: [] for t in topic_ids}
    if not topic_ids:
        return out
    params = {"topics": sorted(set(topic_ids)), "limit": limit}
    # rows unpacked by position: a Row's attribute access costs several times a tuple's,
    # and a miss reads hundreds of candidates
    rows: list[Any] = list((await conn.execute(_TOPIC_TOP, params)).all())
    missing = sorted(set(topic_ids) - {r[0] for r in rows})
    if missing:
        rows += (await conn.execute(_TOPIC_CANDIDATES, params | {"topics": missing})).all()
    for topic_id, book_id, weight, events, decayed, base_score in rows:
        out[topic_id].append(
            Candidate(book_id, weight, int(events), float(decayed), float(base_score))
        )
    return out


_NEIGHBOURS = text(
    "SELECT book_id, neighbour_id, score FROM book_neighbours "
    "WHERE kind = :kind AND book_id = ANY(:books)"
)


@sql_span("neighbours")
async def neighbours(
    conn: AsyncConnection, kind: str, book_ids: Sequence[str]
) -> dict[str, list[tuple[str, float]]]:
    """Precomputed neighbour lists of the given books ('collab' or 'content')."""
    out: dict[str, list[tuple[str, float]]] = {}
    if not book_ids:
        return out
    params = {"kind": kind, "books": sorted(set(book_ids))}
    for r in (await conn.execute(_NEIGHBOURS, params)).all():
        out.setdefault(r.book_id, []).append((r.neighbour_id, r.score))
    return out


_NEIGHBOUR_SCORES = text(
    """
    WITH seeds AS (
        SELECT * FROM unnest(CAST(:ss AS text[]), CAST(:books AS text[]), CAST(:titles AS text[]))
            AS s(study_set_id, book_id, title)
    ), ex AS (
        SELECT * FROM unnest(CAST(:ex_ss AS text[]), CAST(:ex_books AS text[]))
            AS e(study_set_id, book_id)
    ), agg AS (
        SELECT s.study_set_id, n.neighbour_id,
               sum(n.score ORDER BY n.score DESC, s.book_id) AS total, max(n.score) AS best,
               (array_agg(s.title ORDER BY n.score DESC, s.book_id))[1] AS title
        FROM seeds s JOIN book_neighbours n ON n.kind = :kind AND n.book_id = s.book_id
        WHERE NOT EXISTS (
            SELECT 1 FROM ex WHERE ex.study_set_id = s.study_set_id AND ex.book_id = n.neighbour_id
        )
        GROUP BY s.study_set_id, n.neighbour_id
    ), ranked AS (
        SELECT *, row_number() OVER (
            PARTITION BY study_set_id ORDER BY total DESC, neighbour_id) AS rn
        FROM agg
    )
    SELECT study_set_id, neighbour_id, total, best, title FROM ranked WHERE rn <= :limit
    """
)


@sql_span("neighbour_scores")
async def neighbour_scores(
    conn: AsyncConnection,
    kind: str,
    own: Mapping[str, OwnBooks],
    limit: int,
) -> dict[str, list[tuple[str, float, float, str]]]:
    """Per study set: neighbours of its books summed in SQL, its excluded books left out, the
    best `limit` as (book, summed similarity, best similarity, title of the closest seed).
    Sums run in a fixed order, so a study set's figures do not depend on the plan (which
    changes with how many study sets one call reads)."""
    out: dict[str, list[tuple[str, float, float, str]]] = {sid: [] for sid in own}
    seeds = [(sid, b, t) for sid, o in own.items() for b, t in o.seeds]
    if not seeds:
        return out
    excluded = [(sid, b) for sid, o in own.items() for b in o.excluded]
    params = {
        "kind": kind,
        "ss": [s for s, _, _ in seeds],
        "books": [b for _, b, _ in seeds],
        "titles": [t for _, _, t in seeds],
        "ex_ss": [s for s, _ in excluded],
        "ex_books": [b for _, b in excluded],
        "limit": limit,
    }
    for study_set_id, neighbour_id, total, best, title in (
        await conn.execute(_NEIGHBOUR_SCORES, params)
    ).all():
        out[study_set_id].append((neighbour_id, total, best, title))
    return out


_TRENDING = text(
    """
    SELECT s.subject_id, s.grade_id, t.book_id, t.score, sub.name, g.name
    FROM unnest(CAST(:subjects AS text[]), CAST(:grades AS text[])) AS s(subject_id, grade_id)
    JOIN trending_books t ON t.subject_id = s.subject_id AND t.grade_id = s.grade_id
    LEFT JOIN subjects sub ON sub.id = s.subject_id
    LEFT JOIN grades g ON g.id = s.grade_id
    WHERE t.rank <= :limit
    ORDER BY s.subject_id, s.grade_id, t.rank
    """
)


@sql_span("trending")
async def trending(
    conn: AsyncConnection, scopes: Sequence[tuple[str, str]], limit: int
) -> tuple[dict[tuple[str, str], list[tuple[str, float]]], dict[str, str]]:
    """Trend lists per (subject id, grade id), '' standing for any subject or grade, and the
    names of the subjects and grades of the scopes that have a list (`s:<id>`, `g:<id>`), in
    one statement."""
    out: dict[tuple[str, str], list[tuple[str, float]]] = {s: [] for s in scopes}
    names: dict[str, str] = {}
    if not scopes:
        return out, names
    uniq = sorted(set(scopes))
    params = {"subjects": [s for s, _ in uniq], "grades": [g for _, g in uniq], "limit": limit}
    for subject_id, grade_id, book_id, score, subject, grade in (
        await conn.execute(_TRENDING, params)
    ).all():
        out[(subject_id, grade_id)].append((book_id, score))
        if subject is not None:
            names[f"s:{subject_id}"] = subject
        if grade is not None:
            names[f"g:{grade_id}"] = grade
    return out, names


_BOOK_TITLES = text("SELECT id, title FROM books WHERE id = ANY(:ids)")


@sql_span("book_titles")
async def book_titles(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, str]:
    rows = (await conn.execute(_BOOK_TITLES, {"ids": list(ids)})).all()
    return {r.id: r.title for r in rows}


_LISTS_RUN = text("SELECT runs, last_finished_at, last_status FROM worker_jobs WHERE job = 'lists'")


@sql_span("lists_run")
async def lists_run(conn: AsyncConnection) -> object:
    """The worker's last `lists` run (count, end, status), a value that changes when the lists
    do; "never" before the first run."""
    row = (await conn.execute(_LISTS_RUN)).first()
    return tuple(row) if row is not None else "never"


SELECTION_ROW = "lists.model"  # the worker_jobs row of the lists job's model selection
_SELECTION = text("SELECT last_details FROM worker_jobs WHERE job = :job AND last_status = 'ok'")


async def stored_selection(conn: AsyncConnection) -> dict[str, Any] | None:
    """The last lists job's model selection (app/reco/selection.py), or None before one."""
    raw = await conn.scalar(_SELECTION, {"job": SELECTION_ROW})
    return raw if isinstance(raw, dict) else None


_TUNED_WEIGHTS = text(
    "SELECT last_details -> 'weights' FROM worker_jobs WHERE job = :job AND last_status = 'ok'"
)


@sql_span("tuned_weights")
async def tuned_weights(conn: AsyncConnection) -> dict[str, float] | None:
    """HYBRID weights the last lists job validated (app/reco/selection.py), or None."""
    raw = await conn.scalar(_TUNED_WEIGHTS, {"job": SELECTION_ROW})
    if not isinstance(raw, dict) or not raw:
        return None
    return {str(k): float(v) for k, v in raw.items()}


async def effective_settings(conn: AsyncConnection, settings: RecoSettings) -> RecoSettings:
    """The settings with HYBRID's validated weights, when tuning is on and there are some."""
    if not settings.tune_hybrid_weights:
        return settings
    weights = await tuned_weights(conn)
    if weights is None:
        return settings
    return settings.model_copy(update={"hybrid_weights": weights})


# HYBRID's inputs for a batch of study sets (`hybrid_inputs`): the reads of
# `study_set_inputs`, `topic_candidates`, `neighbour_scores` and `trending` as two kinds of
# statement sent side by side: the base (contexts with their topics, explicit or matched from
# the title or subject, the books their students finished, the lists job's weights, the
# topics' candidates and each set's trend list) and the neighbour scores of one or two kinds
# (the costly part: its sort grows with seeds x neighbours, so the kinds run on their own
# backends at once). Rows tagged by kind; columns kind, study set, a-e (text), x-z (float8),
# n (bigint), r (order).
_HYBRID_SETS = """
WITH ss AS (
    SELECT id, user_id, subject_id, grade_id, title FROM study_sets WHERE id = ANY($1::text[])
), own AS (
    -- the sets' own books (seeds), and every book their students finished
    SELECT e.study_set_id, s.user_id, e.book_id, b.title, max(e.occurred_at) AS last_at,
           bool_or(e.event_type = ANY($2::text[])) AS excluded
    FROM study_sets s
    JOIN engagement_events e ON e.study_set_id = s.id
    JOIN books b ON b.id = e.book_id
    WHERE s.user_id IN (SELECT user_id FROM ss)
      AND (e.study_set_id IN (SELECT id FROM ss) OR e.event_type = ANY($2::text[]))
    GROUP BY e.study_set_id, s.user_id, e.book_id, b.title
), ex AS (
    SELECT DISTINCT ss.id AS study_set_id, o.book_id::text COLLATE "C" AS book_id
    FROM ss JOIN own o ON o.user_id = ss.user_id WHERE o.excluded
), w AS (
    SELECT last_details -> 'weights' AS weights FROM worker_jobs
    WHERE job = $3 AND last_status = 'ok'
"""

# $1 ids, $2 excluding event types, $3 the selection row, $4 topics matched, $5 candidates per
# topic, $6 trend list length
_HYBRID_BASE = (
    _HYBRID_SETS
    + """), explicit AS (
    SELECT st.study_set_id, t.id, t.label,
           row_number() OVER (PARTITION BY st.study_set_id ORDER BY t.id) AS n
    FROM study_set_topics st JOIN topics t ON t.id = st.topic_id
    WHERE st.study_set_id IN (SELECT id FROM ss)
), matched AS (
    SELECT s.id AS study_set_id, m.id, m.label, m.matched, m.n
    FROM ss s CROSS JOIN LATERAL (
        SELECT t.id, t.label, q.query @@ to_tsvector('english', t.label) AS matched,
               row_number() OVER (ORDER BY q.query @@ to_tsvector('english', t.label) DESC,
                   ts_rank(to_tsvector('english', t.label), q.query) DESC, t.id) AS n
"""
    + _TITLE_TOPICS
    + """        ORDER BY matched DESC, ts_rank(to_tsvector('english', t.label), q.query) DESC, t.id
        LIMIT $4
    ) m
    WHERE NOT EXISTS (SELECT 1 FROM explicit x WHERE x.study_set_id = s.id)
), tops AS (
    SELECT id AS topic_id FROM explicit UNION SELECT id FROM matched
), cand AS (
    SELECT topic_id, book_id, weight, events, decayed, base_score, rank::bigint AS rank
    FROM topic_top_books WHERE topic_id IN (SELECT topic_id FROM tops) AND rank <= $5
    UNION ALL
    SELECT t.topic_id, c.book_id, c.weight, c.events, c.decayed, c.base_score, c.rank
    FROM tops t CROSS JOIN LATERAL (
        SELECT m.book_id, m.weight, coalesce(p.events, 0) AS events,
               coalesce(p.decayed, 0) AS decayed, coalesce(p.base_score, 0) AS base_score,
               row_number() OVER (ORDER BY m.weight * coalesce(p.base_score, 0) DESC,
                                  m.weight DESC, m.book_id) AS rank
        FROM topic_book_mappings m
        LEFT JOIN book_popularity p ON p.book_id = m.book_id
        WHERE m.topic_id = t.topic_id
        ORDER BY m.weight * coalesce(p.base_score, 0) DESC, m.weight DESC, m.book_id
        LIMIT $5
    ) c
    WHERE NOT EXISTS (
        SELECT 1 FROM topic_top_books x WHERE x.topic_id = t.topic_id AND x.rank <= $5)
), scopes AS (
    SELECT DISTINCT c.sub, c.grade FROM ss CROSS JOIN LATERAL (
        SELECT x.sub, x.grade
        FROM (VALUES (1, coalesce(ss.subject_id, ''), coalesce(ss.grade_id, '')),
                     (2, coalesce(ss.subject_id, ''), ''), (3, '', '')) AS x(o, sub, grade)
        WHERE EXISTS (SELECT 1 FROM trending_books t
                      WHERE t.subject_id = x.sub AND t.grade_id = x.grade AND t.rank <= $6)
        ORDER BY x.o LIMIT 1
    ) c
)
SELECT 'c' AS kind, id::text AS sid, user_id::text AS a, subject_id::text AS b,
       grade_id::text AS c, title AS d, NULL::text AS e,
       NULL::float8 AS x, NULL::float8 AS y, NULL::float8 AS z, NULL::bigint AS n,
       NULL::bigint AS r
FROM ss
UNION ALL
SELECT 't', study_set_id, id, NULL, NULL, label, NULL, NULL, NULL, NULL, NULL, n FROM explicit
UNION ALL
SELECT 'm', study_set_id, id, NULL, NULL, label, NULL, NULL, NULL, NULL,
       CASE WHEN matched THEN 1 ELSE 0 END, n
FROM matched
UNION ALL
SELECT 'x', study_set_id, book_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ex
UNION ALL
SELECT 'w', NULL, NULL, NULL, NULL, weights::text, NULL, NULL, NULL, NULL, NULL, NULL FROM w
UNION ALL
SELECT 'p', NULL, topic_id, book_id, NULL, NULL, NULL, weight, decayed, base_score, events, rank
FROM cand
UNION ALL
SELECT 'r', NULL, s.sub, s.grade, t.book_id, sub.name, g.name, t.score, NULL, NULL, NULL, t.rank
FROM scopes s
JOIN trending_books t ON t.subject_id = s.sub AND t.grade_id = s.grade
LEFT JOIN subjects sub ON sub.id = s.sub
LEFT JOIN grades g ON g.id = s.grade
WHERE t.rank <= $6
"""
)

# $1-$3 as above, $4 seeds per set, $5 neighbours kept per set and kind, $6 the kinds,
# $7 weights tuned by validation, $8 collab_alt weighted by the settings' own weights
_HYBRID_NEAR = (
    _HYBRID_SETS
    + """), seeds AS (
    SELECT study_set_id, book_id::text COLLATE "C" AS book_id, title FROM (
        SELECT o.study_set_id, o.book_id, o.title, row_number() OVER (
            PARTITION BY o.study_set_id ORDER BY o.last_at DESC, o.book_id DESC) AS rn
        FROM own o WHERE o.study_set_id IN (SELECT id FROM ss)
    ) x WHERE rn <= $4
), kinds AS (
    -- collab_alt only when HYBRID weighs it: the validated weights', else the settings'
    SELECT k AS kind FROM unnest($6::text[]) AS k
    WHERE k <> 'collab_alt' OR CASE
        WHEN $7 AND EXISTS (
            SELECT 1 FROM w WHERE jsonb_typeof(weights) = 'object' AND weights <> '{}'::jsonb)
        THEN coalesce((SELECT (weights ->> 'COLLABORATIVE_ALT')::float8 FROM w), 0) > 0
        ELSE $8 END
), agg AS (
    -- per (set, kind, neighbour): the similarities summed in a fixed order (best first, then
    -- by seed), the best one and its seed's title: a window over one sort, which costs far
    -- less than ordered aggregates (a sort per group); the same sums as `neighbour_scores`
    SELECT study_set_id, kind, neighbour_id, total, best, title FROM (
        SELECT s.study_set_id, n.kind COLLATE "C" AS kind, n.neighbour_id,
               sum(n.score) OVER win AS total, n.score AS best, s.title,
               row_number() OVER win AS first
        -- each seed's lists read by the primary key: OFFSET 0 keeps the subquery a
        -- per-seed index scan (joined plainly, a batch of sets was planned as a scan of
        -- every kind's partition, sorted for a merge join: most of the worker's fill)
        FROM seeds s CROSS JOIN kinds k CROSS JOIN LATERAL (
            SELECT n.kind, n.neighbour_id, n.score FROM book_neighbours n
            WHERE n.kind = k.kind AND n.book_id = s.book_id OFFSET 0) n
        -- NOT IN over a CTE: a hashed subplan (NOT EXISTS was planned as a nested loop)
        WHERE (s.study_set_id, n.neighbour_id::text) NOT IN (SELECT study_set_id, book_id FROM ex)
        WINDOW win AS (
            PARTITION BY s.study_set_id, n.kind COLLATE "C", n.neighbour_id
            ORDER BY n.score DESC, s.book_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ) x WHERE first = 1
), ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY study_set_id, kind ORDER BY total DESC, neighbour_id) AS rn
    FROM agg
)
SELECT 'n', study_set_id, kind, neighbour_id, NULL, title, NULL, total, best, NULL, NULL, rn
FROM ranked WHERE rn <= $5
"""
)


@dataclass(slots=True)
class HybridInputs:
    """Everything HYBRID's lists of a batch of study sets are computed from (`hybrid_inputs`)."""

    contexts: dict[str, StudySetContext]
    excluded: dict[str, frozenset[str]]  # per study set: the books its student finished
    weights: dict[str, float] | None  # HYBRID weights the lists job validated, if any
    candidates: dict[str, list[Candidate]]  # per topic, best first
    # per neighbour kind, per study set: (book, summed similarity, best, closest seed title)
    neighbours: dict[str, dict[str, list[tuple[str, float, float, str]]]]
    trending: dict[tuple[str, str], list[tuple[str, float]]]  # per (subject, grade) scope
    names: dict[str, str]  # `s:<id>` / `g:<id>` -> name, for the scopes above


@sql_span("hybrid_inputs")
async def hybrid_inputs(
    fetch: Callable[..., Awaitable[list[Any]]], ids: Sequence[str], settings: RecoSettings
) -> HybridInputs:
    """HYBRID's inputs for the study sets `ids` (unknown ones absent): what
    `study_set_inputs`, `topic_candidates`, `neighbour_scores` (collab, content; collab_alt
    when HYBRID's weights, validated or the settings', give it a weight) and `trending` (each
    set's first scope with a list) read, in three statements sent at once (`fetch(sql,
    *params)` runs one on a connection of its own) instead of five statements in two rounds,
    three more when the sets' topics must be matched."""
    default_alt = settings.hybrid_weights.get("COLLABORATIVE_ALT", 0.0) > 0
    common = (list(ids), list(settings.exclude_event_types), SELECTION_ROW)
    near = (settings.seed_books, settings.candidates_per_strategy)
    base = fetch(
        _HYBRID_BASE,
        *common,
        settings.topic_match_limit,
        settings.candidates_per_topic,
        settings.trending_size,
    )
    parts = [
        fetch(_HYBRID_NEAR, *common, *near, kinds, settings.tune_hybrid_weights, default_alt)
        for kinds in (["collab", "collab_alt"], ["content"])
    ]
    by_kind: dict[str, list[Any]] = {}
    for part in await asyncio.gather(base, *parts):
        for row in part:
            by_kind.setdefault(row[0], []).append(row)
    return _hybrid_of(by_kind)


def _hybrid_of(rows: dict[str, list[Any]]) -> HybridInputs:
    """`hybrid_inputs` from its rows by kind (columns: kind, study set, a-e, x-z, n, r)."""
    contexts = {r[1]: StudySetContext(r[1], r[2], r[3], r[4], r[5]) for r in rows.get("c", ())}
    # explicit topics by id; matched ones best first, as `_match_topics` sets them
    for _, sid, topic_id, _, _, label, _, _, _, _, is_match, _ in sorted(
        rows.get("t", []) + rows.get("m", []), key=lambda r: (r[1], r[11])
    ):
        ctx = contexts[sid]
        ctx.topics[topic_id] = label
        if is_match is not None and ctx.topic_source != "title":
            ctx.topic_source = "title" if is_match else "subject"
    for ctx in contexts.values():
        if not ctx.topics:
            ctx.topic_source = "none"
    excluded: dict[str, set[str]] = {}
    for r in rows.get("x", ()):
        excluded.setdefault(r[1], set()).add(r[2])
    weights = None
    for r in rows.get("w", ()):
        raw = orjson.loads(r[5]) if r[5] else None
        if isinstance(raw, dict) and raw:
            weights = {str(k): float(v) for k, v in raw.items()}
    candidates: dict[str, list[Candidate]] = {}
    for r in sorted(rows.get("p", ()), key=lambda r: (r[2], r[11])):
        candidates.setdefault(r[2], []).append(
            Candidate(r[3], r[7], int(r[10]), float(r[8]), float(r[9]))
        )
    neighbours: dict[str, dict[str, list[tuple[str, float, float, str]]]] = {}
    for r in sorted(rows.get("n", ()), key=lambda r: (r[2], r[1], r[11])):
        neighbours.setdefault(r[2], {}).setdefault(r[1], []).append((r[3], r[7], r[8], r[5]))
    trending: dict[tuple[str, str], list[tuple[str, float]]] = {}
    names: dict[str, str] = {}
    for r in sorted(rows.get("r", ()), key=lambda r: (r[2], r[3], r[11])):
        trending.setdefault((r[2], r[3]), []).append((r[4], r[7]))
        if r[5] is not None:
            names[f"s:{r[2]}"] = r[5]
        if r[6] is not None:
            names[f"g:{r[3]}"] = r[6]
    return HybridInputs(
        contexts,
        {sid: frozenset(excluded.get(sid, ())) for sid in contexts},
        weights,
        candidates,
        neighbours,
        trending,
        names,
    )
