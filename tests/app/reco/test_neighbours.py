"""Neighbour lists: the sparse ranking equals the dense one (pure functions, no database)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.reco import neighbours


def _by_row(triples: neighbours.Triples) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for row, _, score in triples:
        out.setdefault(row, []).append(round(score, 9))
    return {row: sorted(scores) for row, scores in out.items()}


@pytest.mark.parametrize("density", [0.01, 0.05, 0.5])
def test_sparse_ranking_keeps_the_dense_rankings_scores(density: float) -> None:
    rng = np.random.default_rng(7)
    block = sp.random(40, 300, density=density, format="csr", random_state=rng)
    block.data = np.round(block.data * 4) / 4 - 0.25  # ties, zeros and negatives
    sparse = neighbours.sparse_top_k(block.copy(), 5, 100)
    dense = neighbours.top_k(block.toarray(), 5, 100)
    assert _by_row(sparse) == _by_row(dense)
    assert all(score > 0 and col != row for row, col, score in sparse)
    assert all(sum(1 for r, _, _ in sparse if r == row) <= 5 for row in range(100, 140))
    assert all(100 <= row < 140 for row, _, _ in sparse)


def test_cosine_neighbours_score_co_engagement() -> None:
    # users x items: item 0 and 1 share two users, item 2 shares one with item 0
    matrix = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]], dtype=np.float32))
    got = {(a, b): round(s, 6) for a, b, s in neighbours.cosine_neighbours(matrix, 5)}
    # co-count / sqrt(n_a x n_b): items have 3, 2 and 2 users
    assert got[(0, 1)] == round(2 / np.sqrt(3 * 2), 6)
    assert got[(0, 2)] == round(1 / np.sqrt(3 * 2), 6)
    assert got[(1, 2)] == round(1 / np.sqrt(2 * 2), 6)
    assert (0, 0) not in got and len(got) == 6


def test_sparse_ranking_breaks_ties_to_the_lower_column() -> None:
    # one row of 100 columns, four ties at 2.0 (columns 1, 3, 50, 99) and the diagonal (7)
    row = np.zeros(100, dtype=np.float32)
    row[[1, 3, 50, 99]] = 2.0
    row[[7, 20]] = [9.0, 1.0]
    block = sp.csr_matrix(row[None, :])
    assert neighbours.sparse_top_k(block, 2, 7) == [(7, 1, 2.0), (7, 3, 2.0)]
    assert neighbours.sparse_top_k(block, 5, 7) == [
        (7, 1, 2.0),
        (7, 3, 2.0),
        (7, 50, 2.0),
        (7, 99, 2.0),
        (7, 20, 1.0),
    ]


def test_candidate_content_lists_match_the_all_pairs_lists() -> None:
    """Above `exact_up_to` books only candidate pairs are compared: the lists stay (nearly)
    those of every pair, and each kept score is the exact cosine."""
    rng = np.random.default_rng(7)
    common = [f"c{i}" for i in range(12)]  # in most documents: common terms
    docs = [
        [*rng.choice(common, 4, replace=False), *(f"r{x}" for x in rng.integers(0, 300, 3))]
        for _ in range(600)
    ]
    exact = neighbours.tfidf_neighbours(docs, 10)
    approx = neighbours.tfidf_neighbours(docs, 10, exact_up_to=0)
    scores = {(i, j): s for i, j, s in exact}
    assert all(abs(scores.get((i, j), s) - s) < 1e-5 for i, j, s in approx)

    def lists(triples: list[tuple[int, int, float]]) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for i, j, _ in triples:
            out.setdefault(i, set()).add(j)
        return out

    a, b = lists(exact), lists(approx)
    overlap = sum(len(a[i] & b.get(i, set())) for i in a) / sum(len(v) for v in a.values())
    assert overlap > 0.9


def test_preselected_candidates_keep_exact_scores_and_the_best_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above `exact_up_to` books only each book's `PRESELECT` candidates with the largest
    top-term part are scored: scores stay exact cosines, and a preselection smaller than the
    candidates found loses little of the all-pairs lists."""
    rng = np.random.default_rng(11)
    common = [f"c{i}" for i in range(12)]
    docs = [
        [*rng.choice(common, 4, replace=False), *(f"r{x}" for x in rng.integers(0, 120, 4))]
        for _ in range(600)
    ]
    exact = neighbours.tfidf_neighbours(docs, 10)
    scores = {(i, j): s for i, j, s in exact}
    everything = neighbours.tfidf_neighbours(docs, 10, exact_up_to=0)
    monkeypatch.setattr(neighbours, "PRESELECT", 120)  # read at each call
    fewer = neighbours.tfidf_neighbours(docs, 10, exact_up_to=0)
    assert fewer != everything  # the preselection did cut candidates
    assert all(abs(scores.get((i, j), s) - s) < 1e-5 for i, j, s in fewer)

    def hits(triples: neighbours.Triples) -> int:
        return sum(1 for i, j, _ in triples if (i, j) in scores)

    assert hits(fewer) > 0.9 * hits(everything)


def test_lists_name_their_rows_as_the_tuples_did(monkeypatch: pytest.MonkeyPatch) -> None:
    """The content lists travel as arrays (`Lists`) from the ranking to COPY: read back as
    rows they are exactly the (book, neighbour, score) tuples the ranking's triples name, in
    the same order, across the slices they are named in."""
    rng = np.random.default_rng(3)
    common = [f"c{i}" for i in range(12)]
    docs = [
        [*rng.choice(common, 4, replace=False), *(f"r{x}" for x in rng.integers(0, 150, 4))]
        for _ in range(300)
    ]
    ids = [f"book-{i:04d}'x" for i in range(len(docs))]
    for exact_up_to in (10_000, 0):  # every pair, and candidate pairs
        arrays = neighbours.tfidf_lists(docs, 7, exact_up_to=exact_up_to)
        tuples = neighbours.tfidf_neighbours(docs, 7, exact_up_to=exact_up_to)
        monkeypatch.setattr(neighbours, "COPY_SLICE", 97)  # rows named per slice
        named = neighbours.Lists.of(ids, arrays)
        assert len(named) == len(tuples) > 97
        assert list(named) == [(ids[i], ids[j], s) for i, j, s in tuples]
        books = {ids[i] for i in range(0, len(ids), 7)}
        assert named.of_books(books) == [(a, b, s) for a, b, s in named if a in books]
        # HYBRID's tuning: the same rows as positions, books set in turn as the tuples name them
        known = {ids[i]: n for n, i in enumerate(range(0, len(ids), 11))}
        expected = dict(known)
        for a, b, _ in named.of_books(books):
            expected.setdefault(a, len(expected))
            expected.setdefault(b, len(expected))
        rows, cols, scores = named.indexed(books, known)
        assert known == expected and len(known) > len(books)
        by_position = {n: book for book, n in known.items()}
        got = [
            (by_position[a], by_position[b], v)
            for a, b, v in zip(rows.tolist(), cols.tolist(), scores.tolist(), strict=True)
        ]
        assert got == named.of_books(books)
    empty = neighbours.Lists.of([], neighbours.tfidf_lists([], 7))
    assert len(empty) == 0 and list(empty) == []
