"""Low-rank (spectral) item-item models as neighbour lists, for issue 16's tenth pass: a partner
from another family than the item-neighbourhood models (local EASE, RP3beta, item-kNN).

- `gf` (GF-CF's ideal low-pass filter, Shen et al. 2021, "How Powerful is Graph Convolution
  for Recommendation?"): R~ = D_u^-1/2 X D_i^-1/2, V_r its top r right singular vectors,
  W = D_i^-1/2 V_r V_r^T D_i^1/2;
- `svd` (PureSVD's item side, Cremonesi et al. 2010): W = V_r V_r^T of X itself;
- `gfcf`: GF-CF's whole filter, the linear one R~^T R~ plus `alpha` (0.3) times the ideal one.

Each row (a seed book) keeps its `k` best positive weights off the diagonal, as the service's
lists do: a study set's score for b is the sum of W[seed, b]. The right singular vectors are
the top eigenvectors of the items x items Gram matrix R~^T R~, found by `scipy.linalg.eigh`
on its dense copy (up to `DENSE_MAX_ITEMS` items) or by a randomized subspace iteration
(Halko et al. 2011) above; the decomposition of the last matrix is kept, so fits of several
ranks on one matrix pay for it once. Used by `bench.reco_variants` (variant names `gf256`,
`svd128`, `gfcf256`, ...); not a candidate of the lists job.
"""

from __future__ import annotations

import weakref

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from app.reco import models

DENSE_MAX_ITEMS = 15_000
BLOCK = 1024

_cache: dict[tuple[int, bool], tuple[weakref.ref[sp.csr_matrix], np.ndarray, np.ndarray]] = {}


def _normalised(x: sp.csr_matrix, normalised: bool) -> tuple[sp.csr_matrix, np.ndarray]:
    x = sp.csr_matrix(x, dtype=np.float64)
    di = np.asarray(x.sum(axis=0)).ravel()
    di[di == 0] = 1.0
    if not normalised:
        return x, di
    du = np.asarray(x.sum(axis=1)).ravel()
    du[du == 0] = 1.0
    return sp.csr_matrix(sp.diags(du**-0.5) @ x @ sp.diags(di**-0.5)), di


def eigen(x: sp.csr_matrix, rank: int, normalised: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(V, d_i): the top `rank` right singular vectors of R~ (or X), best first, as columns,
    and the items' degrees."""
    key = (id(x), normalised)
    got = _cache.get(key)
    if got is not None and got[0]() is x and got[1].shape[1] >= rank:
        return got[1][:, :rank], got[2]
    _cache.clear()
    r, di = _normalised(x, normalised)
    n = r.shape[1]
    if n <= DENSE_MAX_ITEMS:
        # the reduction to tridiagonal form costs the same at every rank: take 512 at once
        top = min(n, max(rank, 512))
        gram = (r.T @ r).toarray()
        _, v = scipy.linalg.eigh(gram, subset_by_index=[n - top, n - 1], driver="evr")
        del gram
        v = v[:, ::-1].copy()
    else:
        v = _randomized(r, rank)
    _cache[key] = (weakref.ref(x), v, di)
    return v[:, :rank], di


def _randomized(r: sp.csr_matrix, rank: int, oversample: int = 32, iters: int = 4) -> np.ndarray:
    """Top right singular vectors of a sparse matrix by subspace iteration on R'R."""
    rng = np.random.default_rng(16)
    n = r.shape[1]
    rt = sp.csr_matrix(r.T)
    q = np.linalg.qr(rng.standard_normal((n, rank + oversample)))[0]
    for _ in range(iters):
        q = np.linalg.qr(rt @ (r @ q))[0]
    small = q.T @ (rt @ (r @ q))
    vals, vecs = np.linalg.eigh(small)
    order = np.argsort(-vals)[:rank]
    return np.asarray(q @ vecs[:, order])


def _top(dense: np.ndarray, k: int, offset: int) -> tuple[np.ndarray, ...]:
    rows = np.arange(dense.shape[0])
    dense[rows, rows + offset] = -np.inf  # the seed itself
    top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(dense, top, 1)
    keep = vals > 0
    r = np.broadcast_to(rows[:, None], top.shape)
    return r[keep] + offset, top[keep], vals[keep]


def spectral(
    x: sp.csr_matrix,
    k: int,
    rank: int,
    kind: str = "gf",
    alpha: float = 0.3,
) -> sp.csr_matrix:
    """The `kind` model's lists (see the module's docstring), the k best of each row."""
    normalised = kind != "svd"
    v, di = eigen(x, rank, normalised)
    n = v.shape[0]
    if kind == "svd":
        left, right = v, v.T
    else:
        left, right = v * (di**-0.5)[:, None], (v * (di**0.5)[:, None]).T
    lin = None
    if kind == "gfcf":
        r, _ = _normalised(x, True)
        lin = sp.csr_matrix(r.T @ r)
    parts = []
    for start in range(0, n, BLOCK):
        block = left[start : start + BLOCK] @ right
        if lin is not None:
            block = alpha * block + lin[start : start + BLOCK].toarray()
        parts.append(_top(block, k, start))
    return models._assemble(parts, n)
