"""A/B experiments: stable variant split, exposure log, attributed clicks and CTR per variant."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.settings import Experiment, Variant
from app.reco.tracing import sql_span


def bucket(experiment_id: str, user_id: str) -> float:
    """A stable number in [0, 1) from a hash of (experiment, user): the same user, same variant."""
    digest = hashlib.sha256(f"{experiment_id}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, user_id: str) -> Variant:
    """The user's variant: buckets split in proportion to the variants' shares."""
    point = bucket(experiment.id, user_id) * sum(v.share for v in experiment.variants)
    for variant in experiment.variants:
        point -= variant.share
        if point < 0:
            return variant
    return experiment.variants[-1]


@dataclass(frozen=True, slots=True)
class Exposure:
    """One list served under an experiment: what was shown to whom."""

    experiment: str
    variant: str
    strategy: str
    study_set_id: str
    user_id: str
    book_ids: Sequence[str]


# One statement whatever the number of lists: columns as arrays, each list's books as a JSON
# array (a text[][] must be rectangular; lists are not).
_LOG_EXPOSURES = text(
    """
    INSERT INTO recommendation_exposures
        (experiment, variant, strategy, study_set_id, user_id, book_ids)
    SELECT x.e, x.v, x.s, x.ss, x.u,
           ARRAY(SELECT b.id FROM jsonb_array_elements_text(CAST(x.b AS jsonb))
                 WITH ORDINALITY AS b(id, n) ORDER BY b.n)
    FROM unnest(CAST(:e AS text[]), CAST(:v AS text[]), CAST(:s AS text[]),
                CAST(:ss AS text[]), CAST(:u AS text[]), CAST(:b AS text[]))
        AS x(e, v, s, ss, u, b)
    """
)


@sql_span("log_exposures")
async def log_exposures(conn: AsyncConnection, exposures: Sequence[Exposure]) -> None:
    """Log the lists served, in one INSERT however many (a page of study sets logs its page)."""
    if not exposures:
        return
    params = {
        "e": [x.experiment for x in exposures],
        "v": [x.variant for x in exposures],
        "s": [x.strategy for x in exposures],
        "ss": [x.study_set_id for x in exposures],
        "u": [x.user_id for x in exposures],
        "b": [orjson.dumps(list(x.book_ids)).decode() for x in exposures],
    }
    await conn.execute(_LOG_EXPOSURES, params)


@dataclass(frozen=True, slots=True)
class VariantResult:
    variant: str
    strategy: str
    exposures: int
    clicks: int
    completions: int

    @property
    def ctr(self) -> float:
        return self.clicks / self.exposures if self.exposures else 0.0


_REPORT = text(
    """
    WITH shown AS (
        SELECT variant, min(strategy) AS strategy, count(*) AS exposures
        FROM recommendation_exposures WHERE experiment = :e GROUP BY variant
    ), attributed AS (
        SELECT DISTINCT ON (ev.id) ev.id, ev.event_type, x.variant
        FROM recommendation_exposures x
        JOIN engagement_events ev ON ev.study_set_id = x.study_set_id
         AND ev.book_id = ANY(x.book_ids)
         AND ev.event_type IN ('click', 'complete')
         AND ev.occurred_at >= x.served_at
         AND ev.occurred_at < x.served_at + make_interval(secs => :window)
        WHERE x.experiment = :e
        ORDER BY ev.id, x.served_at DESC
    )
    SELECT s.variant, s.strategy, s.exposures,
           count(a.id) FILTER (WHERE a.event_type = 'click') AS clicks,
           count(a.id) FILTER (WHERE a.event_type = 'complete') AS completions
    FROM shown s LEFT JOIN attributed a ON a.variant = s.variant
    GROUP BY s.variant, s.strategy, s.exposures ORDER BY s.variant
    """
)


@sql_span("experiment_report")
async def report(
    conn: AsyncConnection, experiment_id: str, window_hours: float
) -> list[VariantResult]:
    """Per variant: lists shown, and click/complete events on a shown book within the window
    (each event counted once, for the latest exposure before it)."""
    params = {"e": experiment_id, "window": window_hours * 3600.0}
    rows = (await conn.execute(_REPORT, params)).all()
    return [
        VariantResult(r.variant, r.strategy, int(r.exposures), int(r.clicks), int(r.completions))
        for r in rows
    ]
