"""A/B experiments: stable variant split, exposure log, attributed clicks and CTR per variant."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bookbridge.app.reco.config import Experiment, Variant
from bookbridge.app.reco.tracing import sql_span


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


@sql_span("log_exposure")
async def log_exposure(
    conn: AsyncConnection,
    experiment: str,
    variant: str,
    strategy: str,
    study_set_id: str,
    user_id: str,
    book_ids: Sequence[str],
) -> None:
    await conn.execute(
        text(
            "INSERT INTO recommendation_exposures "
            "(experiment, variant, strategy, study_set_id, user_id, book_ids) "
            "VALUES (:e, :v, :s, :ss, :u, :b)"
        ),
        {
            "e": experiment,
            "v": variant,
            "s": strategy,
            "ss": study_set_id,
            "u": user_id,
            "b": list(book_ids),
        },
    )


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
