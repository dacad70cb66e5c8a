"""Ranking metrics at 10 and the in-run baselines: popularity, item-kNN (cosine, k = 50),
RP3beta (alpha 0.75, beta 0.5) and dense EASE (lambda 200, where the catalog allows it), each
fitted with numpy on the training pairs with fixed settings."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from app.reco import models
from app.reco.neighbours import cosine_neighbours

K = 10


@dataclass(slots=True)
class Result:
    strategy: str
    ndcg_at_10: float
    recall_at_10: float
    hit_rate_at_10: float
    coverage_at_10: float
    latency_p50_ms: float
    latency_p99_ms: float


def score_lists(
    lists: Mapping[str, Sequence[str]], test: Mapping[str, set[str]], catalog_size: int
) -> tuple[float, float, float, float]:
    """Mean NDCG@10, recall@10 (hits / held-out), hit rate@10, and catalog coverage@10."""
    ndcg = recall = hits = 0.0
    shown: set[str] = set()
    for user, held in test.items():
        top = list(lists.get(user, ()))[:K]
        shown.update(top)
        rel = [1.0 if b in held else 0.0 for b in top]
        dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(K, len(held))))
        ndcg += dcg / ideal
        recall += sum(rel) / len(held)
        hits += 1.0 if any(rel) else 0.0
    n = max(1, len(test))
    return ndcg / n, recall / n, hits / n, len(shown) / max(1, catalog_size)


def percentiles(samples_ms: Iterable[float]) -> tuple[float, float]:
    arr = np.asarray(list(samples_ms), dtype=np.float64)
    if arr.size == 0:
        return 0.0, 0.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


class Baselines:
    """The baselines computed from the training pairs with numpy, not the service."""

    def __init__(
        self, train: Mapping[str, Sequence[str]], neighbours: int = 50, ease_max_items: int = 12_000
    ) -> None:
        self.users = list(train)
        self.books = sorted({b for bs in train.values() for b in bs})
        index = {b: i for i, b in enumerate(self.books)}
        rows = [u for u, user in enumerate(self.users) for _ in train[user]]
        cols = [index[b] for user in self.users for b in train[user]]
        self.matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(self.users), len(self.books)),
        )
        self.matrix.sum_duplicates()
        self.matrix.data[:] = 1.0
        self.popularity = np.asarray(self.matrix.sum(axis=0)).ravel()
        triples = cosine_neighbours(self.matrix, neighbours)
        self.weights: dict[str, sp.csr_matrix | np.ndarray] = {
            "ITEMKNN_BASELINE": sp.csr_matrix(
                (
                    [s for _, _, s in triples],
                    ([i for i, _, _ in triples], [j for _, j, _ in triples]),
                ),
                shape=(len(self.books), len(self.books)),
            ),
            "RP3BETA_BASELINE": models.rp3beta(self.matrix, 200, alpha=0.75, beta=0.5),
        }
        if len(self.books) <= ease_max_items:
            # all of B, negative weights too (the service keeps the best 50 of each row)
            self.weights["EASE_BASELINE"] = models.ease_weights(self.matrix, lam=200.0)
        self.row = {u: i for i, u in enumerate(self.users)}

    @property
    def methods(self) -> list[str]:
        return ["POPULARITY_BASELINE", *self.weights]

    def top(self, users: Sequence[str], method: str) -> dict[str, list[str]]:
        idx = [self.row[u] for u in users]
        sub = self.matrix[idx]
        if method == "POPULARITY_BASELINE":
            scores = np.tile(self.popularity.astype(np.float64), (len(idx), 1))
        else:
            product = sub @ self.weights[method]
            scores = np.asarray(product.toarray() if sp.issparse(product) else product, np.float64)
        scores[sub.nonzero()] = -np.inf
        kk = min(K, scores.shape[1] - 1)
        best = (
            np.argpartition(-scores, kk, axis=1)[:, :K] if kk > 0 else np.zeros((len(idx), 0), int)
        )
        out = {}
        for r, user in enumerate(users):
            order = sorted(best[r], key=lambda c: -scores[r, c])
            out[user] = [
                self.books[c] for c in order if np.isfinite(scores[r, c]) and scores[r, c] > 0
            ]
        return out
