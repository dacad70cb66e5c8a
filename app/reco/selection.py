"""The lists job's model selection: which collaborative model writes the `collab` lists, and
HYBRID's weights, both chosen on a validation split of the training interactions.

The split (per student, seeded; `models.validation_split`) holds out a fifth of the books of up
to `selection_users` students. Each candidate model that fits the catalog's size within the
memory and time budgets is fitted on the rest and scored by NDCG@10 of its lists for those
students; the best is refitted on everything. With the chosen model's validation fit, HYBRID's
weights are picked from a small grid on the same students, blending the components as the
service does (each component's top `candidates_per_strategy`, normalised to its maximum). One
of those components is a second collaborative model (`SECOND`: the fitted candidate of another
family than the chosen one, e.g. RP3beta or item-kNN beside local or dense EASE, whose blend
with the chosen model validates best; not the best of them alone), whose lists (kind
`collab_alt`) are written only when the grid gives it a weight. Each grid is ordered simplest
first (fewest weighted components, then the least total weight) and the one-standard-error
rule takes the first weight set whose validation NDCG@10 is within one standard error of the
best one's: a component is blended only when it gains more than the noise of the validation
students. Every grid holds the weight 0 for every component and no set validating below it
is taken, so HYBRID's validation NDCG@10 is never below the chosen model's. Fewer than `selection_min_users` students to validate on: the default
model and weights.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.settings import RecoSettings
from app.reco import data, models, neighbours

DEFAULT_MODEL = "ease_local"
SECOND = "COLLABORATIVE_ALT"  # HYBRID's second collaborative component (lists kind collab_alt)
SECOND_GRID = (0.0, 0.1, 0.2, 0.35, 0.5)  # its weight, chosen first (COLLABORATIVE 1)

FULL_BUDGET_BOOKS = 50_000  # above this many books the selection's time budget shrinks


def time_budget(seconds: float, books: int) -> float:
    """The selection's time budget for a catalog: `selection_seconds` up to FULL_BUDGET_BOOKS
    books, in proportion above (30 s of 60 at 100,000 books). A first local EASE fit costs
    about the same at every size (its neighbourhoods shrink as books grow), but the content
    lists, the refit and the writes before and after it grow with books: the shrunk budget
    keeps the whole lists job within its 3 minutes at 100,000 books."""
    return seconds * min(1.0, FULL_BUDGET_BOOKS / max(books, 1))


WEIGHT_GRID = {
    "TOPIC": (0.0, 0.05, 0.15),
    "CONTENT": (0.0, 0.05, 0.1, 0.2),
    "TRENDING": (0.0, 0.01, 0.05),
}

_PAIRS = text(
    """
    SELECT s.user_id, e.book_id FROM engagement_events e
    JOIN study_sets s ON s.id = e.study_set_id
    WHERE e.book_id IS NOT NULL GROUP BY s.user_id, e.book_id
    """
)
_USER_TOPICS = text(
    "SELECT DISTINCT s.user_id, st.topic_id FROM study_set_topics st "
    "JOIN study_sets s ON s.id = st.study_set_id WHERE s.user_id = ANY(:users)"
)
_TOPIC_BOOKS = text("SELECT topic_id, book_id, weight * base_score FROM topic_top_books")


@dataclass(slots=True)
class Selection:
    """What the lists job chose, on what evidence; stored and exported as metrics."""

    model: str
    params: dict[str, float]
    reason: str
    validation_users: int = 0
    validation_ndcg: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    weights: dict[str, float] | None = None
    weights_ndcg: float | None = None
    refit_seconds: float = 0.0
    weights_seconds: float = 0.0
    second: str | None = None  # the candidate writing the `collab_alt` lists, if weighted
    second_refit_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Matrix:
    """Engagement as users x books (0/1), with the ids of rows and columns."""

    x: sp.csr_matrix
    users: list[str]
    books: list[str]


async def engagement(conn: AsyncConnection) -> Matrix:
    pairs = (await conn.execute(_PAIRS)).all()
    users: dict[str, int] = {}
    books: dict[str, int] = {}
    ui = [users.setdefault(u, len(users)) for u, _ in pairs]
    bi = [books.setdefault(b, len(books)) for _, b in pairs]
    x = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (ui, bi)), shape=(len(users), len(books))
    )
    return Matrix(x, list(users), list(books))


Rows = neighbours.Lists


async def compute_collab(
    conn: AsyncConnection,
    s: RecoSettings,
    content: neighbours.Rows = (),
) -> tuple[Rows, Selection, Rows]:
    """The `collab` lists (book, neighbour, score) of the chosen model, the choice, and the
    `collab_alt` lists of the second model (empty unless HYBRID's validated weights use it)."""
    found = await engagement(conn)
    if found.x.nnz == 0:
        none = _rows(sp.csr_matrix((0, 0)), [])
        return none, Selection(DEFAULT_MODEL, {}, "no engagement yet"), none
    items = found.x.shape[1]
    cands = models.candidates(s.ease_max_items, s.ease_local_neighbourhood, items, s.ease_lambda)
    if s.collab_model != "auto":
        cands = [c for c in cands if c.name == s.collab_model] or cands
    default = cands[0].name if s.collab_model != "auto" else DEFAULT_MODEL
    fits: dict[str, sp.csr_matrix] = {}
    choice, val, fitted = models.choose(
        found.x,
        s.neighbours_k,
        cands,
        default,
        memory_budget=s.selection_memory_mb * 2**20,
        time_budget=time_budget(s.selection_seconds, items),
        min_users=s.selection_min_users,
        max_users=s.selection_users,
        ids=(found.users, found.books),
        keep_fits=fits,
    )
    out = Selection(
        choice.model,
        choice.params,
        choice.reason,
        choice.validation_users,
        choice.validation_ndcg,
        choice.fit_seconds,
        choice.skipped,
    )
    second = None
    if val is not None and fitted is not None and s.tune_hybrid_weights:
        started = time.perf_counter()
        out.weights, out.weights_ndcg, second = await _tune_weights(
            conn, s, found, val, fitted, content, _partners(cands, choice, fits)
        )
        out.weights_seconds = round(time.perf_counter() - started, 3)
    fits.clear()
    started = time.perf_counter()
    rows = _rows(models.refit(cands, choice, found.x, s.neighbours_k), found.books)
    out.refit_seconds = round(time.perf_counter() - started, 3)
    alt = _rows(sp.csr_matrix((0, 0)), [])
    if second and out.weights and out.weights.get(SECOND, 0.0) > 0:
        started = time.perf_counter()
        cand = next(c for c in cands if models.candidate_key(c) == second)
        alt = _rows(cand.fit(found.x, s.neighbours_k), found.books)
        out.second = second
        out.second_refit_seconds = round(time.perf_counter() - started, 3)
    return rows, out, alt


def _rows(w: sp.csr_matrix, names: list[str]) -> Rows:
    """A fit's lists as arrays named by `names` (no tuple per row)."""
    coo = w.tocoo()
    return neighbours.Lists.of(
        names, (coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64))
    )


def _as_lists(rows: neighbours.Rows) -> neighbours.Lists:
    """(book, neighbour, score) tuples as `neighbours.Lists`, rows in the same order."""
    names: dict[str, int] = {}
    pairs = [(names.setdefault(a, len(names)), names.setdefault(b, len(names))) for a, b, _ in rows]
    arrays = (
        np.array([a for a, _ in pairs], dtype=np.int64),
        np.array([b for _, b in pairs], dtype=np.int64),
        np.array([v for _, _, v in rows], dtype=np.float64),
    )
    return neighbours.Lists.of(list(names), arrays)


def _family(model: str) -> str:
    return "ease" if model.startswith("ease") else model


def _partners(
    cands: list[models.Candidate], choice: models.Choice, fits: dict[str, sp.csr_matrix]
) -> dict[str, sp.csr_matrix]:
    """The candidates for HYBRID's second collaborative model, best-validating first: every
    fitted candidate of another family than the chosen one (EASE, dense or local, agrees too
    closely with itself to add anything; a random walk or a cosine kNN is what adds to it).
    Which of them partners the chosen model is up to the blend's validation (`_tune_weights`):
    the best model alone is not always the best partner (issue 16)."""
    others = [
        models.candidate_key(c)
        for c in cands
        if _family(c.name) != _family(choice.model) and models.candidate_key(c) in fits
    ]
    others.sort(key=lambda k: -choice.validation_ndcg[k])
    return {k: fits[k] for k in others}


# --- HYBRID weights ------------------------------------------------------------------------


def _top_normalised(scores: sp.csr_matrix, seen: sp.csr_matrix, limit: int) -> sp.csr_matrix:
    """Each row's best `limit` scores outside `seen`, divided by the row's maximum."""
    scores = sp.csr_matrix(scores, dtype=np.float64)
    masked = scores - scores.multiply(seen.astype(bool))
    masked.eliminate_zeros()
    rows, cols, vals = models.top_k_rows(masked, limit, diagonal=True)
    top = np.zeros(scores.shape[0])
    np.maximum.at(top, rows, vals)
    vals = vals / np.where(top[rows] > 0, top[rows], 1.0)
    return sp.csr_matrix((vals, (rows, cols)), shape=scores.shape)


async def _tune_weights(
    conn: AsyncConnection,
    s: RecoSettings,
    matrix: Matrix,
    val: models.Validation,
    fitted: sp.csr_matrix,
    content: neighbours.Rows,
    partners: dict[str, sp.csr_matrix] | None = None,
) -> tuple[dict[str, float], float, str | None]:
    """HYBRID's weights by validation NDCG@10, COLLABORATIVE fixed at 1, and the partner taken
    as its second collaborative model (None: none): first the partner and its weight together,
    each of `partners` (candidate key -> validation fit, best alone first) at each weight of
    SECOND_GRID, the simplest within one standard error of the best blend (lower weights first,
    at one weight the better model alone first); then the others' from WEIGHT_GRID with it."""
    index = {b: i for i, b in enumerate(matrix.books)}
    # only the lists of the validation students' own books reach their scores (seeds @ w)
    seed_books = {matrix.books[j] for j in np.unique(val.fit[val.users].indices)}
    if not isinstance(content, neighbours.Lists):
        content = _as_lists(content)
    content_rows, content_cols, content_scores = content.indexed(seed_books, index)
    topic_rows = (await conn.execute(_TOPIC_BOOKS)).all()
    for _, b, _ in topic_rows:
        index.setdefault(b, len(index))
    n, n_e = len(index), len(matrix.books)
    seeds = sp.csr_matrix(val.fit[val.users], dtype=np.float32)
    seeds.resize((seeds.shape[0], n))
    limit = s.candidates_per_strategy

    def collab_scores(fit: sp.csr_matrix) -> sp.csr_matrix:
        coo = fit.tocoo()
        w = sp.csr_matrix((coo.data, (coo.row, coo.col)), shape=(n, n))
        return _top_normalised(seeds @ w, seeds, limit)

    comps: dict[str, sp.csr_matrix] = {"COLLABORATIVE": collab_scores(fitted)}
    first: dict[str, float] = {}
    partner: str | None = None
    if partners:
        alts = {key: collab_scores(w) for key, w in partners.items()}
        partner, weight = _pick_partner(comps["COLLABORATIVE"], alts, seeds, val.held)
        first = {SECOND: weight}
        if partner is not None:
            comps[SECOND] = alts[partner]
        del alts
    if len(content_rows):
        w = sp.csr_matrix(
            (content_scores.astype(np.float32), (content_rows, content_cols)), shape=(n, n)
        )
        comps["CONTENT"] = _top_normalised(seeds @ w, seeds, limit)
    counts = np.asarray(val.fit.sum(axis=0)).ravel()
    best = np.argsort(-counts, kind="stable")[: s.trending_size]
    best = best[counts[best] > 0]
    trend = np.zeros(n)
    trend[best] = counts[best] / max(counts[best].max(initial=0.0), 1.0)
    comps["TRENDING"] = sp.csr_matrix(np.ones((seeds.shape[0], 1))) @ sp.csr_matrix(trend)
    users = [matrix.users[u] for u in val.users]
    pairs = (await conn.execute(_USER_TOPICS, {"users": users})).all()
    if pairs and topic_rows:
        topics: dict[str, int] = {}
        row_of = {u: i for i, u in enumerate(users)}
        ut = sp.csr_matrix(
            (
                np.ones(len(pairs)),
                (
                    [row_of[u] for u, _ in pairs],
                    [topics.setdefault(t, len(topics)) for _, t in pairs],
                ),
            ),
            shape=(len(users), len(topics) + 1),
        )
        kept = [(t, b, v) for t, b, v in topic_rows if t in topics]
        tb = sp.csr_matrix(
            (
                np.array([float(v or 0.0) for _, _, v in kept]),
                ([topics[t] for t, _, _ in kept], [index[b] for _, b, _ in kept]),
            ),
            shape=(len(topics) + 1, n),
        )
        comps["TOPIC"] = _top_normalised(ut @ tb, seeds, limit)
    assert n_e <= n
    grid = [
        {**first, **dict(zip(WEIGHT_GRID, combo, strict=True))}
        for combo in itertools.product(*WEIGHT_GRID.values())
    ]
    # the simplest first (fewest components, then the least total weight): the one-standard-
    # error rule keeps the first of them that validates as well as the best, within the noise
    grid.sort(key=lambda ws: (sum(v > 0 for v in ws.values()), sum(ws.values())))
    scored: list[tuple[float, dict[str, float]]] = []
    weights = _within_one_error(comps, seeds, val.held, grid, scored)
    ndcg = next(score for score, ws in scored if ws is weights)
    return {"COLLABORATIVE": 1.0, **weights}, round(ndcg, 5), partner


def _pick_partner(
    collab: sp.csr_matrix,
    alts: dict[str, sp.csr_matrix],
    seen: sp.csr_matrix,
    held: list[np.ndarray],
) -> tuple[str | None, float]:
    """HYBRID's second collaborative model and its weight: each partner of `alts` (key ->
    its normalised validation scores, the best alone first) at each weight of SECOND_GRID,
    blended with the chosen model's `collab`, and the one-standard-error rule over all of
    them, lower weights first (at one weight, the better model alone first). The partner is
    chosen by the blend it makes, not by its own validation NDCG@10: on the sparse stand-in
    item-kNN validated above RP3beta alone, and RP3beta blended 0.002 better (issue 16).
    (None, 0.0) when no blend beats the chosen model alone by more than the noise."""
    names = {f"{SECOND}:{key}": key for key in alts}
    comps = {"COLLABORATIVE": collab, **{name: alts[key] for name, key in names.items()}}
    tried: list[dict[str, float]] = [{}]
    tried += [{name: w} for w in SECOND_GRID if w > 0 for name in names]
    for name, w in _within_one_error(comps, seen, held, tried).items():
        return names[name], w
    return None, 0.0


def _within_one_error(
    comps: dict[str, sp.csr_matrix],
    seen: sp.csr_matrix,
    held: list[np.ndarray],
    grid: list[dict[str, float]],
    scored: list[tuple[float, dict[str, float]]] | None = None,
) -> dict[str, float]:
    """The first weight set of `grid` (simplest first; `grid[0]` the baseline) whose validation
    NDCG@10 is within one standard error (paired over the students) of the best one's and not
    below the baseline's. A larger weight that gains less than that on validation gained
    nothing on goodbooks' test users and lost up to 0.0015 (issue 16): the noise of 5,000
    students, not a better blend. `scored`, when given, receives every set's (NDCG@10, set)."""
    per: list[np.ndarray] = []
    found = _score_blends(comps, seen, held, grid, per)
    if scored is not None:
        scored.extend(found)
    best = max(range(len(found)), key=lambda i: found[i][0])
    for i, (score, weights) in enumerate(found):
        diff = per[best] - per[i]
        error = float(diff.std(ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        if score >= found[0][0] and float(diff.mean()) <= error:
            return weights
    return found[best][1]


def _score_blends(
    comps: dict[str, sp.csr_matrix],
    seen: sp.csr_matrix,
    held: list[np.ndarray],
    grid: list[dict[str, float]],
    per_user: list[np.ndarray] | None = None,
) -> list[tuple[float, dict[str, float]]]:
    """Validation NDCG@10 of each weight set (and, into `per_user`, each student's). The
    candidates of a student are the union of the components' lists (a few hundred books), laid
    out once as a dense students x slots array per component, so each weight set costs one
    weighted sum and one top-10 of that array."""
    union = sum(
        (c.astype(bool).astype(np.float32) for c in comps.values()), sp.csr_matrix(seen.shape)
    )
    union = sp.csr_matrix(union)
    union.sum_duplicates()
    users, n = union.shape
    lengths = np.diff(union.indptr)
    width = max(1, int(lengths.max(initial=0)))
    rows = np.repeat(np.arange(users), lengths)
    slots = np.arange(union.nnz) - union.indptr[rows]
    keys = rows.astype(np.int64) * n + union.indices

    def laid_out(m: sp.csr_matrix) -> np.ndarray:
        m = sp.csr_matrix(m)
        m.sum_duplicates()
        r = np.repeat(np.arange(users), np.diff(m.indptr))
        want = r.astype(np.int64) * n + m.indices
        pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
        inside = keys[pos] == want if len(keys) else np.zeros(len(want), dtype=bool)
        out = np.zeros((users, width))
        out[rows[pos[inside]], slots[pos[inside]]] = m.data[inside]
        return out

    values = {name: laid_out(c) for name, c in comps.items()}
    cols = np.full((users, width), -1, dtype=np.int64)
    cols[rows, slots] = union.indices
    excluded = (cols < 0) | (laid_out(seen) > 0)
    truth = sp.csr_matrix(
        (
            np.ones(sum(len(h) for h in held)),
            (np.repeat(np.arange(users), [len(h) for h in held]), np.concatenate(held)),
        ),
        shape=(users, n),
    )
    relevant = laid_out(truth) > 0
    discount = 1.0 / np.log2(np.arange(2, models.K + 2))
    ideal = np.array([discount[: min(models.K, len(h))].sum() for h in held])
    k = min(models.K, width)
    out = []
    for weights in grid:
        score = values["COLLABORATIVE"].copy()
        for name, w in weights.items():
            if w > 0 and name in values:
                score += w * values[name]
        score[excluded | (score <= 0)] = -np.inf
        top = np.argpartition(-score, k - 1, axis=1)[:, :k]
        # best first, ties to the lower book id (as models.top_lists)
        order = np.lexsort((np.take_along_axis(cols, top, 1), -np.take_along_axis(score, top, 1)))
        top = np.take_along_axis(top, order, 1)
        hit = np.take_along_axis(relevant, top, 1) & np.isfinite(np.take_along_axis(score, top, 1))
        dcg = (hit * discount[:k]).sum(axis=1)
        out.append((float((dcg / ideal).mean()), weights))
        if per_user is not None:
            per_user.append(dcg / ideal)
    return out


# --- storage --------------------------------------------------------------------------------

_STORE = text(
    """
    INSERT INTO worker_jobs (job, runs, last_started_at, last_finished_at, last_status,
                             last_details)
    VALUES (:job, 1, now(), clock_timestamp(), 'ok', CAST(:details AS jsonb))
    ON CONFLICT (job) DO UPDATE SET runs = worker_jobs.runs + 1,
        last_started_at = EXCLUDED.last_started_at, last_finished_at = clock_timestamp(),
        last_status = 'ok', last_details = EXCLUDED.last_details
    """
)


async def store(conn: AsyncConnection, selection: Selection) -> None:
    """Record the choice in the transaction that writes its lists (they change together)."""
    details = orjson.dumps(selection.to_json()).decode()
    await conn.execute(_STORE, {"job": data.SELECTION_ROW, "details": details})


def describe(chosen: dict[str, Any]) -> list[str]:
    """The lists job's choice: model, validation NDCG@10 and fit time per candidate, weights."""
    params = ", ".join(f"{k} {v:g}" for k, v in chosen["params"].items())
    lines = [
        f"collab model: {chosen['model']} ({params}); {chosen['reason']}, "
        f"{chosen['validation_users']} validation users, refit {chosen['refit_seconds']} s"
    ]
    lines.extend(
        f"  candidate {name:<40} validation ndcg@10 {score:.4f}  fit {chosen['fit_seconds'][name]} s"
        for name, score in chosen["validation_ndcg"].items()
    )
    lines.extend(f"  skipped {name}: {why}" for name, why in chosen["skipped"].items())
    if chosen.get("weights"):
        weights = ", ".join(f"{k} {v:g}" for k, v in chosen["weights"].items())
        lines.append(
            f"HYBRID weights: {weights} (validation ndcg@10 {chosen['weights_ndcg']}, "
            f"grid {chosen.get('weights_seconds', 0)} s)"
        )
        if chosen.get("second"):
            lines.append(
                f"  second collab model (lists collab_alt): {chosen['second']}, "
                f"refit {chosen.get('second_refit_seconds', 0)} s"
            )
    else:
        lines.append("HYBRID weights: the configured defaults (not validated)")
    return lines
