"""Pure scoring: the topic formula's parts, per-strategy component scores, blending, reasons."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bookbridge.app.reco.data import Candidate


@dataclass(slots=True)
class Scored:
    """A component's score for one book, with the words that explain it (made on demand:
    only the books that make the list are ever explained)."""

    score: float
    why: list[str] | Callable[[], list[str]] = field(default_factory=list)
    tiebreak: float = 0.0

    @property
    def reasons(self) -> list[str]:
        return self.why() if callable(self.why) else self.why


Component = dict[str, Scored]


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
    acc: dict[str, list[tuple[float, str, Candidate]]] = {}
    for topic_id, label in topics.items():
        for c in candidates.get(topic_id, ()):
            acc.setdefault(c.book_id, []).append((c.weight, label, c))
    out: Component = {}
    for book_id, parts in acc.items():
        base = parts[0][2].base_score  # ln(events + 1) x recency, the same for every topic
        score = sum(w * base for w, _, _ in parts)
        out[book_id] = Scored(
            score, _topic_words(parts, half_life_days), tiebreak=sum(p[0] for p in parts)
        )
    return out


def _topic_words(
    parts: list[tuple[float, str, Candidate]], half_life_days: float
) -> Callable[[], list[str]]:
    def words() -> list[str]:
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

    return words


def neighbour_component(
    seeds: Sequence[tuple[str, str]],
    lists: Mapping[str, Sequence[tuple[str, float]]],
    phrase: str,
) -> Component:
    """Sum similarities to the study set's books; the reason names the closest one."""
    acc: dict[str, list[float | str]] = {}
    for seed_id, title in seeds:
        for neighbour_id, sim in lists.get(seed_id, ()):
            entry = acc.get(neighbour_id)
            if entry is None:
                acc[neighbour_id] = [sim, sim, title]
            else:
                entry[0] = float(entry[0]) + sim
                if sim > float(entry[1]):
                    entry[1], entry[2] = sim, title
    return {
        book: Scored(float(total), _phrase(phrase, str(title), float(best)))
        for book, (total, best, title) in acc.items()
    }


def neighbour_rows_component(
    rows: Sequence[tuple[str, float, float, str]], phrase: str
) -> Component:
    """From SQL-aggregated rows: (book, summed similarity, best similarity, closest seed title)."""
    return {book: Scored(total, _phrase(phrase, title, best)) for book, total, best, title in rows}


def _phrase(phrase: str, title: str, sim: float) -> Callable[[], list[str]]:
    return lambda: [phrase.format(title=title, sim=sim)]


def trending_component(items: Sequence[tuple[str, float]], where: str) -> Component:
    return {book: Scored(score, [f"Trending {where}"]) for book, score in items}


def ranked(component: Component, exclude: Iterable[str] = ()) -> list[tuple[str, Scored]]:
    """Best first; ties broken by the tiebreak (topic weight) and then by book id."""
    skip = set(exclude)
    rows = [(b, s) for b, s in component.items() if b not in skip]
    rows.sort(key=lambda r: (-r[1].score, -r[1].tiebreak, r[0]))
    return rows


def normalised(component: Component) -> dict[str, float]:
    """Scores divided by the list maximum (tiebreak-based when every score is zero)."""
    top = max((s.score for s in component.values()), default=0.0)
    if top > 0:
        return {b: s.score / top for b, s in component.items()}
    top_tb = max((s.tiebreak for s in component.values()), default=0.0)
    return {b: 0.01 * s.tiebreak / top_tb for b, s in component.items()} if top_tb > 0 else {}


def blend(components: Mapping[str, Component], weights: Mapping[str, float]) -> Component:
    """HYBRID: weighted sum of normalised component scores; reasons from each contributor."""
    total: dict[str, float] = {}
    why: dict[str, list[tuple[float, Scored]]] = {}
    for name, component in components.items():
        w = weights.get(name, 0.0)
        if w <= 0:
            continue
        for book, value in normalised(component).items():
            contribution = w * value
            total[book] = total.get(book, 0.0) + contribution
            why.setdefault(book, []).append((contribution, component[book]))
    return {book: Scored(score, _blend_words(why[book])) for book, score in total.items()}


def _blend_words(parts: list[tuple[float, Scored]]) -> Callable[[], list[str]]:
    def words() -> list[str]:
        ordered = sorted(parts, key=lambda p: -p[0])
        return [r for _, sc in ordered for r in sc.reasons[:1]]

    return words
