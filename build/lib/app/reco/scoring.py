"""Pure scoring: the topic formula's parts, per-strategy component scores, blending, reasons."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from app.reco.data import Candidate


@dataclass(slots=True)
class Scored:
    """One listed book's score with the words that explain it."""

    score: float
    reasons: list[str] = field(default_factory=list)


def _no_words(book: str) -> list[str]:
    return []


@dataclass(slots=True)
class Component:
    """One strategy's scores for its candidate books. Reasons are made on demand (`explain`),
    so only the books that make a list are ever put into words."""

    scores: dict[str, float] = field(default_factory=dict)
    tiebreak: dict[str, float] = field(default_factory=dict)
    explain: Callable[[str], list[str]] = _no_words

    def __contains__(self, book: object) -> bool:
        return book in self.scores

    def __len__(self) -> int:
        return len(self.scores)

    def books(self) -> set[str]:
        return set(self.scores)


def recency_factor(events: float, decayed: float) -> float:
    """Engagement-weighted mean of 2^(-age / half-life): 1.0 when all of it is from today."""
    return decayed / events if events > 0 else 0.0


def topic_formula(weight: float, events: float, recency: float) -> float:
    """score = weight x ln(engagement_count + 1) x recency_factor."""
    return weight * math.log(events + 1) * recency


def topic_component(
    topics: Mapping[str, str],
    candidates: Mapping[str, Sequence[Candidate]],
    half_life_days: float,
) -> Component:
    """Sum the formula over the study set's topics; the reasons name the strongest topic."""
    score: dict[str, float] = {}
    weight_sum: dict[str, float] = {}
    for topic_id in topics:
        for c in candidates.get(topic_id, ()):
            b = c.book_id
            # base_score = ln(events + 1) x recency factor, computed per book by the worker
            if b in score:
                score[b] += c.weight * c.base_score
                weight_sum[b] += c.weight
            else:
                score[b], weight_sum[b] = c.weight * c.base_score, c.weight

    index: dict[str, list[tuple[float, str, Candidate]]] = {}

    def explain(book: str) -> list[str]:
        if not index:
            for topic_id, label in topics.items():
                for c in candidates.get(topic_id, ()):
                    index.setdefault(c.book_id, []).append((c.weight, label, c))
        parts = index[book]
        weight, label, cand = min(parts, key=lambda p: (-p[0], p[1]))
        reasons = [f"Matches your topic '{label}' (weight {weight:.2f})"]
        if len(parts) > 1:
            reasons[0] += f" and {len(parts) - 1} more of your topics"
        if cand.events > 0:
            recency = recency_factor(cand.events, cand.decayed)
            reasons.append(
                f"{cand.events} engagements by students (aggregated), "
                f"recency factor {recency:.2f} (half-life {half_life_days:g} days)"
            )
        else:
            reasons.append("No engagement recorded yet: ranked by topic weight")
        return reasons

    return Component(score, weight_sum, explain)


def neighbour_component(
    seeds: Sequence[tuple[str, str]],
    lists: Mapping[str, Sequence[tuple[str, float]]],
    phrase: str,
) -> Component:
    """Sum similarities to the given books; the reason names the closest one."""
    total: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for seed_id, title in seeds:
        for neighbour_id, sim in lists.get(seed_id, ()):
            total[neighbour_id] = total.get(neighbour_id, 0.0) + sim
            if neighbour_id not in best or sim > best[neighbour_id][0]:
                best[neighbour_id] = (sim, title)
    return Component(total, {}, lambda b: [phrase.format(title=best[b][1], sim=best[b][0])])


def neighbour_rows_component(
    rows: Sequence[tuple[str, float, float, str]], phrase: str
) -> Component:
    """From SQL-aggregated rows: (book, summed similarity, best similarity, closest seed title)."""
    scores = {book: total for book, total, _, _ in rows}
    why = {book: (best, title) for book, _, best, title in rows}
    return Component(scores, {}, lambda b: [phrase.format(title=why[b][1], sim=why[b][0])])


def trending_component(items: Sequence[tuple[str, float]], where: str) -> Component:
    return Component(dict(items), {}, lambda b: [f"Trending {where}"])


def ranked(
    component: Component, exclude: Iterable[str] = (), limit: int | None = None
) -> list[tuple[str, Scored]]:
    """Best first (ties: higher topic weight, then book id), explained, at most `limit`."""
    skip = set(exclude)
    s, tb = component.scores, component.tiebreak
    books = [b for b in s if b not in skip]
    if limit is not None and len(books) > limit:
        # everything tied with the limit-th best score stays in, so tie-breaks remain exact
        floor = heapq.nlargest(limit, [s[b] for b in books])[-1]
        books = [b for b in books if s[b] >= floor]
    books.sort(key=lambda b: (-s[b], -tb.get(b, 0.0), b))
    return [(b, Scored(s[b], component.explain(b))) for b in books[:limit]]


def normalised(component: Component) -> dict[str, float]:
    """Scores divided by the list maximum (tiebreak-based when every score is zero)."""
    top = max(component.scores.values(), default=0.0)
    if top > 0:
        return {b: v / top for b, v in component.scores.items()}
    top_tb = max(component.tiebreak.values(), default=0.0)
    if top_tb <= 0:
        return {}
    return {b: 0.01 * v / top_tb for b, v in component.tiebreak.items()}


def blend(components: Mapping[str, Component], weights: Mapping[str, float]) -> Component:
    """HYBRID: weighted sum of normalised component scores; reasons from each contributor."""
    total: dict[str, float] = {}
    used: list[tuple[float, dict[str, float], Component]] = []
    # In name order, not the order the components were filled in (concurrently, in whatever
    # order they finished): float sums depend on their order, and a list must not.
    for name, component in sorted(components.items()):
        w = weights.get(name, 0.0)
        if w <= 0:
            continue
        norm = normalised(component)
        used.append((w, norm, component))
        for book, value in norm.items():
            total[book] = total.get(book, 0.0) + w * value

    def explain(book: str) -> list[str]:
        parts = sorted(
            ((w * norm[book], c) for w, norm, c in used if book in norm), key=lambda p: -p[0]
        )
        return [r for _, c in parts for r in c.explain(book)[:1]]

    return Component(total, {}, explain)
