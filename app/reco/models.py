"""Collaborative models for the `collab` neighbour lists (pure numpy/scipy, no database).

Each model turns a users x items 0/1 matrix X into an items x items weight matrix W, sparse,
holding the k best positive weights of each row: a student's score for book j is the sum of
W[i, j] over the books i they engaged with, which is what the service sums from the lists.

- `itemknn`: cosine co-occurrence with shrinkage, co / (n_i^a n_j^(1-a) + shrink).
- `rp3beta`: item -> user -> item random walk with its entries raised to alpha, divided by the
  target's popularity^beta (Paudel et al. 2016).
- `ease`: EASE (Steck 2019), dense closed form; memory items^2 (used up to `ease_max_items`).
- `ease_local`: EASE restricted to each item's M nearest items (by cosine or by co-count): for
  each item j a ridge regression of X[:, j] on X[:, N(j)], w = (G_NN + lam I)^-1 G_Nj with
  G = X'X, solved in batches of small dense systems; memory grows with items x M^2 instead of
  items^2.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

CHUNK = 1024  # rows of a co-occurrence block
SOLVE_BATCH_CELLS = 8_000_000  # cells of the batched M x M systems solved at once
DENSE_GRAM_MAX_ITEMS = 12_000  # up to here (576 MB) the Gram cells are read from a dense copy
GATHER_ROWS = 256  # above it, rows of G laid out densely at once (100 MB at 100,000 items)
USER_POWER = 0.25  # the user-weighted local EASE candidate: rows times (user's items)^-1/4


def top_k_rows(
    block: sp.spmatrix, k: int, offset: int = 0, diagonal: bool = False
) -> tuple[np.ndarray, ...]:
    """The k largest positive entries of each row of a sparse block (the diagonal, column ==
    row + offset, skipped unless `diagonal`; ties go to the lower column), as (rows, cols,
    values) arrays."""
    block = sp.csr_matrix(block)
    block.sum_duplicates()
    rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    keep = block.data > 0
    if not diagonal:
        keep &= block.indices != rows + offset
    rows, cols, vals = rows[keep], block.indices[keep], block.data[keep]
    if k > 0:
        near = vals >= kth_largest(rows, vals, k, block.shape[0])[rows]
        rows, cols, vals = rows[near], cols[near], vals[near]
    # by row, best first, then lower column: lexsort is stable and a canonical block's
    # columns ascend within each row, so the column key is implied (and the dearest to sort)
    order = np.lexsort((-vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(block.shape[0]))
    best = (np.arange(len(rows)) - starts[rows]) < k
    return rows[best] + offset, cols[best], vals[best]


def kth_largest(rows: np.ndarray, vals: np.ndarray, k: int, n_rows: int) -> np.ndarray:
    """Per row (rows ascending), its k-th largest value, -inf where it has k or fewer: what
    is below cannot be among its best k, so sorting can skip it. Found by a partition of the
    long rows laid out densely; when that layout would be much larger than the entries, every
    row gets -inf (nothing skipped)."""
    out = np.full(n_rows, -np.inf)
    lengths = np.bincount(rows, minlength=n_rows)
    long = np.flatnonzero(lengths > k)
    if len(long) == 0 or len(long) * int(lengths[long].max()) > 2 * len(vals) + 2**20:
        return out
    slot = np.full(n_rows, -1)
    slot[long] = np.arange(len(long))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    mine = slot[rows] >= 0
    dense = np.full((len(long), int(lengths[long].max())), -np.inf)
    where = np.flatnonzero(mine)
    dense[slot[rows[where]], where - starts[rows[where]]] = vals[where]
    width = dense.shape[1]
    out[long] = np.partition(dense, width - k, axis=1)[:, width - k]
    return out


def _assemble(parts: list[tuple[np.ndarray, ...]], n: int) -> sp.csr_matrix:
    if not parts:
        return sp.csr_matrix((n, n), dtype=np.float32)
    rows = np.concatenate([p[0] for p in parts])
    cols = np.concatenate([p[1] for p in parts])
    vals = np.concatenate([p[2] for p in parts]).astype(np.float32)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _counts(x: sp.csr_matrix) -> np.ndarray:
    counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
    counts[counts == 0] = 1.0
    return counts


def itemknn(x: sp.csr_matrix, k: int, shrink: float = 10.0, alpha: float = 0.5) -> sp.csr_matrix:
    """Cosine item-kNN with shrinkage: co-count / (n_i^a x n_j^(1-a) + shrink), top k."""
    n = x.shape[1]
    counts = _counts(x)
    left, right = np.power(counts, alpha), np.power(counts, 1 - alpha)
    xt = x.T.tocsr().astype(np.float32)
    xc = x.tocsc().astype(np.float32)
    parts = []
    for start in range(0, n, CHUNK):
        co = (xt[start : start + CHUNK] @ xc).tocsr()
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        co.data = co.data / (left[start + rows] * right[co.indices] + shrink)
        parts.append(top_k_rows(co, k, start))
    return _assemble(parts, n)


def rp3beta(x: sp.csr_matrix, k: int, alpha: float = 0.75, beta: float = 0.5) -> sp.csr_matrix:
    """RP3beta: W = (P_iu^a P_ui^a)_ij / pop_j^beta, P row-stochastic, top k per row."""
    n = x.shape[1]
    x = sp.csr_matrix(x, dtype=np.float32)
    user_deg = np.asarray(x.sum(axis=1)).ravel()
    user_deg[user_deg == 0] = 1.0
    counts = _counts(x)
    p_ui = sp.diags((1.0 / user_deg).astype(np.float32)) @ x
    p_iu = (sp.diags((1.0 / counts).astype(np.float32)) @ x.T.tocsr()).tocsr()
    if alpha != 1.0:
        p_ui.data = np.power(p_ui.data, alpha)
        p_iu.data = np.power(p_iu.data, alpha)
    p_ui = p_ui.tocsc()
    damp = np.power(counts, -beta)
    parts = []
    for start in range(0, n, CHUNK):
        block = (p_iu[start : start + CHUNK] @ p_ui).tocsr()
        block.data = block.data * damp[block.indices]
        parts.append(top_k_rows(block, k, start))
    return _assemble(parts, n)


def ease_weights(x: sp.csr_matrix, lam: float = 200.0) -> np.ndarray:
    """Dense EASE's whole B = I - P / diag(P), P = (X'X + lam I)^-1 (zero diagonal)."""
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    del gram
    p /= -np.diag(p)[None, :]
    p[np.diag_indices_from(p)] = 0.0
    return p


def ease(x: sp.csr_matrix, k: int, lam: float = 200.0) -> sp.csr_matrix:
    """Dense EASE, the k best positive weights of each row."""
    n = x.shape[1]
    p = ease_weights(x, lam)
    parts = [top_k_rows(sp.csr_matrix(p[s : s + CHUNK]), k, s) for s in range(0, n, CHUNK)]
    return _assemble(parts, n)


def _gram_blocks(x: sp.csr_matrix) -> list[sp.csr_matrix]:
    """G = X'X in row blocks of CHUNK items (sorted indices, diagonal kept)."""
    n = x.shape[1]
    xt = x.T.tocsr().astype(np.float32)
    xr = x.tocsr().astype(np.float32)  # the right operand as CSR: no conversion per block
    blocks = []
    for start in range(0, n, CHUNK):
        co = (xt[start : start + CHUNK] @ xr).tocsr()
        co.sort_indices()
        blocks.append(co)
    return blocks


def _nearest(
    x: sp.csr_matrix, blocks: list[sp.csr_matrix], m: int, cosine: bool = False
) -> np.ndarray:
    """Each item's m most co-occurring other items (by co-count, or by cosine when `cosine`),
    padded with the index `items` (a dummy item, Gram zero)."""
    n = x.shape[1]
    norms = np.sqrt(_counts(x))
    nbr = np.full((n, m), n, dtype=np.int64)
    for number, co in enumerate(blocks):
        start = number * CHUNK
        rank_by = co
        if cosine:
            r = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
            rank_by = co.copy()
            rank_by.data = co.data / (norms[start + r] * norms[co.indices])
        rows, cols, _ = top_k_rows(rank_by, m, start)
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        nbr[rows, rank] = cols
    return nbr


@dataclass(slots=True)
class _Prepared:
    """What the local EASE fits of one matrix share: its Gram blocks and the last
    neighbourhoods with their gathered systems (lambda is added per batch, not stored)."""

    x: weakref.ref[sp.csr_matrix]
    blocks: list[sp.csr_matrix]
    key: tuple[int, bool] | None = None
    nbr: np.ndarray | None = None
    a: np.ndarray | None = None
    b: np.ndarray | None = None


# The model selection fits up to three local EASE candidates on one matrix (lambda 10 and 50
# on the same cosine neighbourhoods, then co-count ones): the Gram matrix, and for the same
# neighbourhoods the gathered systems, are computed once. One slot, the last matrix's (a fit
# of another matrix replaces it first), emptied when that matrix is collected.
_prepared: list[_Prepared] = []


def _prepare(x: sp.csr_matrix, m: int, cosine: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(neighbourhoods, A, b) of `_gather` for x, reusing the slot's when x is its matrix
    (the matrix must not change between fits)."""
    slot = _prepared[0] if _prepared and _prepared[0].x() is x else None
    if slot is None:
        _prepared.clear()  # the old matrix's blocks go before the new ones are made
        slot = _Prepared(weakref.ref(x), _gram_blocks(x))
        _prepared.append(slot)
        weakref.finalize(x, _forget, slot)
    if slot.key != (m, cosine) or slot.nbr is None or slot.a is None or slot.b is None:
        slot.key, slot.nbr, slot.a, slot.b = None, None, None, None
        slot.nbr = _nearest(x, slot.blocks, m, cosine)
        slot.a, slot.b = _gather(slot.blocks, slot.nbr)
        slot.key = (m, cosine)
    return slot.nbr, slot.a, slot.b


def release() -> None:
    """Drop what the local EASE fits share (`choose` and `refit` do, when done fitting)."""
    _prepared.clear()


def _forget(slot: _Prepared) -> None:
    if slot in _prepared:
        _prepared.remove(slot)


def _gather(blocks: list[sp.csr_matrix], nbr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A[j] = G[N(j), N(j)] and b[j] = G[N(j), j] for every item j, read from G's rows: up to
    DENSE_GRAM_MAX_ITEMS items from a dense copy of G, above it `GATHER_ROWS` rows of G at a
    time laid out densely (scattered into one reused buffer, read by index for every
    neighbourhood that holds one of them, then zeroed again): a read is one load instead of
    a binary search over a block's keys, which was most of a fit at 100,000 books."""
    n, m = nbr.shape
    if n <= DENSE_GRAM_MAX_ITEMS:
        dense = np.zeros((n + 1, n + 1), dtype=np.float32)
        dense[:n, :n] = sp.vstack(blocks, format="csr").toarray()
        step = max(1, SOLVE_BATCH_CELLS // (m * m))
        a = np.empty((n, m, m), dtype=np.float32)
        for s in range(0, n, step):
            idx = nbr[s : s + step]
            a[s : s + step] = dense[idx[:, :, None], idx[:, None, :]]
        b = dense[nbr, np.arange(n)[:, None]]
        return a, b
    a = np.zeros((n, m, m), dtype=np.float32)
    b = np.zeros((n, m), dtype=np.float32)
    flat = nbr.ravel()
    order = np.argsort(flat, kind="stable")  # (item, slot) pairs grouped by neighbour row
    ordered = flat[order]
    rows_of = np.zeros((GATHER_ROWS, n + 1), dtype=np.float32)  # column n: the dummy item
    buffer = rows_of.ravel()
    first = 0  # the next row of G to lay out (blocks in order; the dummy row n is never read)
    for co in blocks:
        for sub in range(0, co.shape[0], GATHER_ROWS):
            rows = co[sub : sub + GATHER_ROWS]
            start, first = first, first + rows.shape[0]
            lo, hi = np.searchsorted(ordered, [start, first])
            pairs = order[lo:hi]
            if len(pairs) == 0:
                continue
            local = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
            rows_of[local, rows.indices] = rows.data
            items, slots = pairs // m, pairs % m
            cols = np.concatenate([nbr[items], items[:, None]], axis=1)  # the m columns, then j
            cells = (flat[pairs] - start)[:, None] * (n + 1) + cols
            vals = np.take(buffer, cells)
            a[items, slots] = vals[:, :m]
            b[items, slots] = vals[:, m]
            rows_of[local, rows.indices] = 0.0
    return a, b


def ease_local(
    x: sp.csr_matrix,
    k: int,
    lam: float = 25.0,
    neighbourhood: int = 100,
    cosine: bool = False,
    user_power: float = 0.0,
    dropout: float = 0.0,
    emphasized: bool = True,
) -> sp.csr_matrix:
    """EASE restricted to each item's `neighbourhood` most co-occurring items (by co-count, or
    by cosine when `cosine`), top k per row. With `user_power` p > 0 each user's row is
    weighted by (their items)^-p, so a co-occurrence counts (items)^-2p (readers of many books
    say less about any pair of them), and lambda is scaled by the users' mean weight^2 to stay
    in proportion to the Gram matrix. With `dropout` q > 0 each neighbour's penalty is
    lambda + q / (1 - q) x its count (G's diagonal): the emphasized denoising autoencoder
    (EDLAE, Steck 2020), whose ridge grows with an item's popularity; `emphasized` False
    drops the zero-diagonal constraint (DLAE). Neither is a candidate of the lists job: on
    goodbooks the validation split prefers EDLAE and the test users lose by it (issue 16,
    eighth pass)."""
    if user_power > 0:
        x, lam = user_weighted(x, user_power, lam)
    n = x.shape[1]
    m = max(1, min(neighbourhood, n - 1))
    nbr, a, b = _prepare(x, m, cosine)
    batch = max(1, SOLVE_BATCH_CELLS // (m * m))
    emphasis = dropout / (1.0 - dropout)
    weights = np.empty((n, m), dtype=np.float32)
    diag = np.arange(m)
    # many small systems: a threaded BLAS spends more on waking its threads than on the work
    # (19 s instead of 0.5 s for 800 systems of 100 on 2 busy cores)
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, batch):
            stop = start + batch
            systems = a[start:stop].copy()  # A stays as gathered for the next lambda
            if emphasis:
                systems[:, diag, diag] *= np.float32(1.0 + emphasis)
            systems[:, diag, diag] += np.float32(lam)
            weights[start:stop] = np.linalg.solve(systems, b[start:stop, :, None])[:, :, 0]
    if not emphasized and dropout > 0:
        # DLAE (no zero diagonal): column j is EASE's times Lambda_jj P_jj, P_jj^-1 = G_jj +
        # Lambda_jj - b_j . w_j (the Schur complement of the system holding j itself)
        gjj = np.asarray(x.multiply(x).sum(axis=0)).ravel()
        penalty = lam + emphasis * gjj
        residual = gjj + penalty - np.einsum("ij,ij->i", b[:n].astype(np.float64), weights)
        weights *= (penalty / np.maximum(residual, 1e-12))[:, None].astype(np.float32)
    real = nbr < n
    # column j of B holds item j's regression weights; row i (a seed's list) is its transpose
    owner = np.broadcast_to(np.arange(n)[:, None], nbr.shape)
    w = sp.csr_matrix((weights[real], (nbr[real], owner[real])), shape=(n, n))
    parts = [top_k_rows(w[s : s + CHUNK], k, s) for s in range(0, n, CHUNK)]
    return _assemble(parts, n)


def user_weighted(x: sp.csr_matrix, power: float, lam: float) -> tuple[sp.csr_matrix, float]:
    """X with each user's row times (their items)^-power, and lambda times the mean over users
    of (their items)^-2 power (what the Gram matrix's cells shrink by on average)."""
    x = sp.csr_matrix(x, dtype=np.float32)
    deg = np.maximum(np.diff(x.indptr), 1).astype(np.float64)
    weighted = sp.csr_matrix(sp.diags(np.power(deg, -power).astype(np.float32)) @ x)
    return weighted, lam * float(np.mean(np.power(deg, -2 * power)))


# --- validation ---------------------------------------------------------------------------

K = 10


@dataclass(slots=True)
class Validation:
    """A users x items matrix with some users' entries held out: `fit` is what models train
    on, `users` the validated rows (sorted) and `held` their held-out items."""

    fit: sp.csr_matrix
    users: np.ndarray
    held: list[np.ndarray]


def _hashed(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()


def held_out(user: str, items: Sequence[str], share: float = 0.2, seed: int = 16) -> set[str]:
    """The items a user holds out when validated by id: the `share` of them (rounded, at
    least one) with the lowest seeded hash of (user, item). It depends on nothing but the ids,
    so whoever makes data from a user's interactions (the offline evaluation's study-set
    topics) can leave out exactly what the lists job will hide from its candidates."""

    def rank(item: str) -> bytes:
        return hashlib.blake2b(f"{seed}:{user}:{item}".encode(), digest_size=8).digest()

    chosen = sorted(items, key=rank)[: max(1, round(share * len(items)))]
    return set(chosen)


def validation_split(
    x: sp.csr_matrix,
    share: float = 0.2,
    min_items: int = 5,
    max_users: int = 5000,
    seed: int = 16,
    ids: tuple[Sequence[str], Sequence[str]] | None = None,
) -> Validation:
    """Per user, seeded: up to `max_users` users with `min_items` or more items each hold out
    `share` of them (rounded, at least one) at random; everyone else keeps all. With `ids`
    (the user and item ids of the rows and columns) the held-out items are `held_out`'s."""
    x = sp.csr_matrix(x, dtype=np.float32)
    x.sum_duplicates()
    rng = np.random.default_rng(seed)
    sizes = np.diff(x.indptr)
    eligible = np.flatnonzero(sizes >= min_items)
    if len(eligible) > max_users:
        if ids is None:
            eligible = np.sort(rng.choice(eligible, max_users, replace=False))
        else:  # by the users' ids, not their rows: the same users whatever order rows came in
            order = sorted(eligible.tolist(), key=lambda u: _hashed(seed, ids[0][u]))
            eligible = np.sort(np.array(order[:max_users], dtype=eligible.dtype))
    keep = np.ones(x.nnz, dtype=bool)
    held = []
    for u in eligible:
        lo, hi = x.indptr[u], x.indptr[u + 1]
        size = hi - lo
        if ids is None:
            take = rng.choice(size, max(1, round(share * size)), replace=False)
        else:
            mine = [ids[1][j] for j in x.indices[lo:hi]]
            hide = held_out(ids[0][int(u)], mine, share, seed)
            take = np.array([i for i, item in enumerate(mine) if item in hide], dtype=np.int64)
        keep[lo + take] = False
        held.append(np.sort(x.indices[lo + take]))
    rows = np.repeat(np.arange(x.shape[0]), sizes)
    fit = sp.csr_matrix(
        (x.data[keep], (rows[keep], x.indices[keep])), shape=x.shape, dtype=np.float32
    )
    return Validation(fit, eligible, held)


def top_lists(scores: sp.csr_matrix, seen: sp.csr_matrix, k: int = K) -> list[np.ndarray]:
    """Each row's k best positive-scored columns outside `seen` (ties to the lower column)."""
    scores = sp.csr_matrix(scores, dtype=np.float64)
    seen = sp.csr_matrix(seen)
    masked = scores - scores.multiply(seen.astype(bool))
    masked.eliminate_zeros()
    rows, cols, _ = top_k_rows(masked, k, diagonal=True)
    starts = np.searchsorted(rows, np.arange(scores.shape[0] + 1))
    return [cols[starts[r] : starts[r + 1]] for r in range(scores.shape[0])]


def ndcg(lists: list[np.ndarray], held: list[np.ndarray], k: int = K) -> float:
    """Mean NDCG@k, binary relevance (as app.evaluate.metrics.score_lists)."""
    if not held:
        return 0.0
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for top, truth in zip(lists, held, strict=True):
        rel = np.isin(top[:k], truth)
        total += float(discount[: len(rel)][rel].sum()) / float(
            discount[: min(k, len(truth))].sum()
        )
    return total / len(held)


def validation_ndcg(val: Validation, w: sp.csr_matrix, batch: int = 1000) -> float:
    """NDCG@10 of the lists `w` gives the validated users from their fitting rows."""
    lists: list[np.ndarray] = []
    for start in range(0, len(val.users), batch):
        seeds = val.fit[val.users[start : start + batch]]
        lists.extend(top_lists(seeds @ w, seeds))
    return ndcg(lists, val.held)


# --- choice ---------------------------------------------------------------------------------

Fit = Callable[[sp.csr_matrix, int], sp.csr_matrix]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model with its settings, and what fitting it costs for a catalog (bytes)."""

    name: str
    params: dict[str, float]
    fit: Fit
    memory: Callable[[sp.csr_matrix], float]  # peak bytes for this matrix, roughly


@dataclass(slots=True)
class Choice:
    model: str
    params: dict[str, float]
    validation_ndcg: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    validation_users: int = 0
    reason: str = "validated"


def _gram_cells(x: sp.csr_matrix) -> float:
    """An upper bound of X'X's non-zero cells: sum of squared user degrees, at most items^2."""
    deg = np.diff(sp.csr_matrix(x).indptr).astype(np.float64)
    return float(min(float(x.shape[1]) ** 2, float((deg * deg).sum())))


def _ease_local_fit(lam: float, m: int, cosine: bool, user_power: float = 0.0) -> Fit:
    return lambda x, k: ease_local(
        x, k, lam=lam, neighbourhood=m, cosine=cosine, user_power=user_power
    )


def _ease_local_memory(m: int) -> Callable[[sp.csr_matrix], float]:
    def need(x: sp.csr_matrix) -> float:
        n = int(x.shape[1])
        dense = 4.0 * (n + 1) ** 2 if n <= DENSE_GRAM_MAX_ITEMS else 0.0
        return 8.0 * _gram_cells(x) + dense + 4.0 * n * (m + 2) ** 2 + 24.0 * n * m

    return need


def _knn_memory(x: sp.csr_matrix) -> float:
    n = int(x.shape[1])
    return 24.0 * n * 60 + 24.0 * CHUNK * n + 40.0 * int(x.nnz)


def candidates(
    ease_max_items: int, neighbourhood: int, items: int, ease_lambda: float = 200.0
) -> list[Candidate]:
    """The candidate grid, the likeliest winners first (the local EASE led on both data sets of
    issue 16; when the time budget runs out, what is left is skipped), RP3beta second (the
    partner HYBRID blends with it). The local EASE's
    neighbourhood shrinks with the catalog so that items x M^2 (the Gram cells it gathers and
    solves) stays near 1.5e8; dense EASE (items^3 time, items^2 memory) comes last."""
    m = int(max(20, min(neighbourhood, np.sqrt(1.5e8 / max(items, 1)))))
    local = [
        Candidate(
            "ease_local",
            {"lambda": lam, "neighbourhood": float(m), "cosine": float(cosine)},
            _ease_local_fit(lam, m, cosine),
            _ease_local_memory(m),
        )
        for cosine, lam in ((True, 10.0), (True, 50.0), (False, 10.0), (False, 50.0))
    ]
    # RP3beta second: HYBRID blends the chosen model with the best of another family, and
    # RP3beta is the one that adds to local EASE (the other local EASE variants do not)
    rp3 = Candidate(
        "rp3beta",
        {"alpha": 0.75, "beta": 0.5},
        lambda x, k: rp3beta(x, k, alpha=0.75, beta=0.5),
        _knn_memory,
    )
    # after the lambda-50 cosine one (which reuses the first fit's systems): lambda 10 on
    # cosine neighbourhoods, each user's row weighted by (their books)^-1/4 (issue 16:
    # +0.0002 to +0.0013 NDCG@10 on validation and test users of goodbooks and both
    # stand-ins); a new Gram matrix, so it costs what the first fit did
    weighted = Candidate(
        "ease_local",
        {"lambda": 10.0, "neighbourhood": float(m), "cosine": 1.0, "user_power": USER_POWER},
        _ease_local_fit(10.0, m, True, USER_POWER),
        _ease_local_memory(m),
    )
    # co-count neighbourhoods at lambda 10 and 50 (the second a batch of solves on the first's
    # systems): on a sparse catalog (29 readers a book) lambda 10 led on validation and test
    # users by 0.002 and 0.006 NDCG@10 over lambda 50 (issue 16, fifth pass)
    out = [local[0], rp3, local[1], weighted, local[2], local[3]]
    out.append(
        Candidate("itemknn", {"shrink": 10.0}, lambda x, k: itemknn(x, k, shrink=10.0), _knn_memory)
    )
    if items <= ease_max_items:
        out.append(
            Candidate(
                "ease",
                {"lambda": ease_lambda},
                lambda x, k: ease(x, k, lam=ease_lambda),
                lambda x: 3 * 8.0 * float(x.shape[1]) ** 2,
            )
        )
    return out


def choose(
    x: sp.csr_matrix,
    k: int,
    cands: list[Candidate],
    default: str,
    memory_budget: float,
    time_budget: float,
    min_users: int,
    max_users: int = 5000,
    ids: tuple[Sequence[str], Sequence[str]] | None = None,
    keep_fits: dict[str, sp.csr_matrix] | None = None,
) -> tuple[Choice, Validation | None, sp.csr_matrix | None]:
    """Fit each candidate on the validation split's fitting rows, within the memory budget
    (bytes, estimated before fitting) and the time budget (CPU seconds of this thread, so the
    choice does not depend on the machine's other load: once spent, or when the
    last candidate's time would overrun it, the remaining candidates are skipped; a local
    EASE that differs from a fitted one only in lambda shares its neighbourhoods and systems
    and is always fitted), and keep the best validation NDCG@10. Returns the choice, the
    split and the chosen model's validation fit (for blending), or the `default` candidate and
    None when too few users can be validated. `keep_fits`, when given, receives every fitted
    candidate's validation fit by `candidate_key`, for blending a second model."""
    by_name = {candidate_key(c): c for c in cands}
    val = validation_split(x, max_users=max_users, ids=ids)
    fallback = next(c for c in cands if c.name == default)
    if len(val.users) < min_users:
        choice = Choice(default, fallback.params, validation_users=len(val.users))
        choice.reason = f"fewer than {min_users} users to validate on: the default"
        return choice, None, None
    # the budget counts this thread's CPU seconds, not wall seconds: the same candidates are
    # fitted (and the same model chosen) whatever else the machine runs; on an idle machine
    # the two agree (the fits run on this one thread, local EASE's BLAS on one thread too)
    started = time.thread_time()
    best: tuple[float, str, sp.csr_matrix] | None = None
    scores: dict[str, float] = {}
    fits: dict[str, float] = {}
    skipped: dict[str, str] = {}
    last = 0.0  # seconds of the last candidate's fit and scoring that shared nothing
    # the last local EASE fitted, but for lambda: `_prepare` keeps its systems while other
    # models fit (they do not touch them), so another lambda on them stays cheap after those
    fitted_shape = ""
    for key, cand in by_name.items():
        need = cand.memory(x)
        if need > memory_budget:
            skipped[key] = f"needs ~{need / 2**30:.1f} GiB"
            continue
        # another lambda on the neighbourhoods the last fit gathered (`_prepare` keeps them)
        # is one batch of solves, seconds where that fit took tens: fitted whatever the
        # budget says
        shape = f"{cand.name}:{_tag({p: v for p, v in cand.params.items() if p != 'lambda'})}"
        cheap = cand.name == "ease_local" and shape == fitted_shape
        spent = time.thread_time() - started
        if spent > time_budget and not cheap:
            skipped[key] = "time budget spent"
            continue
        if spent + last > time_budget and not cheap:  # the candidates cost alike
            skipped[key] = f"would overrun the time budget (the last took {last:.0f} CPU s)"
            continue
        t, cpu = time.perf_counter(), time.thread_time()
        w = cand.fit(val.fit, k)
        fits[key] = round(time.perf_counter() - t, 3)
        scores[key] = round(validation_ndcg(val, w), 5)
        if not cheap:
            last = time.thread_time() - cpu
        if cand.name == "ease_local":
            fitted_shape = shape
        if keep_fits is not None:
            keep_fits[key] = w
        if best is None or scores[key] > best[0]:
            best = (scores[key], key, w)
    release()
    if best is None:
        choice = Choice(default, fallback.params, skipped=skipped, reason="nothing fitted")
        return choice, None, None
    chosen = by_name[best[1]]
    choice = Choice(chosen.name, chosen.params, scores, fits, skipped, len(val.users))
    return choice, val, best[2]


def candidate_key(cand: Candidate) -> str:
    """A candidate's name in the choice's figures: model and settings."""
    return f"{cand.name}:{_tag(cand.params)}"


def _tag(params: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in params.items())


def refit(cands: list[Candidate], choice: Choice, x: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The chosen candidate fitted on every interaction."""
    cand = next(c for c in cands if c.name == choice.model and c.params == choice.params)
    try:
        return cand.fit(x, k)
    finally:
        release()
