"""Collaborative models and their choice by validation (pure numpy/scipy, no database)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

from app.reco import models


def _matrix(rows: list[list[int]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def _clustered(users: int, items: int, clusters: int, per_user: int, seed: int) -> sp.csr_matrix:
    """Each user reads `per_user` books of one cluster (books i with i % clusters == c)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(users):
        mine = np.arange(u % clusters, items, clusters)
        for b in rng.choice(mine, per_user, replace=False):
            rows.append(u)
            cols.append(b)
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(users, items))


# users x items: items 0 and 1 share two users, item 2 shares one with each of them
SMALL = [[1, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]]


def test_itemknn_divides_co_counts_by_shrunk_cosine_norms() -> None:
    w = models.itemknn(_matrix(SMALL), 5, shrink=1.0).toarray()
    # items have 3, 2 and 2 users; co-counts (0,1) = 2, (0,2) = 1, (1,2) = 1
    assert w[0, 1] == pytest.approx(2 / (np.sqrt(3 * 2) + 1))
    assert w[2, 0] == pytest.approx(1 / (np.sqrt(2 * 3) + 1))
    assert w[1, 2] == pytest.approx(1 / (2 + 1))
    assert np.all(np.diag(w) == 0)


def test_rp3beta_walks_item_user_item_and_damps_popular_targets() -> None:
    x = _matrix(SMALL)
    w = models.rp3beta(x, 5, alpha=1.0, beta=0.5).toarray()
    # 0 -> users {0, 1, 3} (1/3 each) -> item 1: user 0 (1/2), user 1 (1/3); / sqrt(n_1 = 2)
    assert w[0, 1] == pytest.approx((1 / 3) * (1 / 2 + 1 / 3) / np.sqrt(2))
    # 2 -> users {1, 2} (1/2 each) -> item 0 only through user 1 (1/3); / sqrt(3)
    assert w[2, 0] == pytest.approx((1 / 2) * (1 / 3) / np.sqrt(3))
    w_more = models.rp3beta(x, 5, alpha=1.0, beta=1.0).toarray()
    assert w_more[1, 0] / w[1, 0] < w_more[1, 2] / w[1, 2]  # item 0 (3 users) damped more


@pytest.mark.parametrize(("dense_gram", "cosine"), [(True, False), (False, False), (True, True)])
def test_local_ease_with_every_item_in_reach_is_ease(
    dense_gram: bool, cosine: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EASE's column j is the ridge regression of item j on all other items, so the local
    variant whose neighbourhood holds every other item gives EASE's weights exactly."""
    monkeypatch.setattr(models, "DENSE_GRAM_MAX_ITEMS", 10**6 if dense_gram else 0)
    monkeypatch.setattr(models, "CHUNK", 7)  # several Gram blocks
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((80, 25)) < 0.6).astype(np.float32))
    dense = models.ease(x, 30, lam=5.0).toarray()
    local = models.ease_local(x, 30, lam=5.0, neighbourhood=24, cosine=cosine).toarray()
    np.testing.assert_allclose(local, dense, atol=1e-4)
    assert (dense > 0).sum() > 100


def test_user_weighted_local_ease_is_ease_of_the_weighted_gram() -> None:
    """With user_power p, a co-occurrence counts (the user's items)^-2p: with every item in
    reach the weights are EASE's of G = X' D X, D = deg^-2p, lambda times D's mean."""
    x = _clustered(200, 30, 3, 6, seed=8) + _clustered(200, 30, 3, 3, seed=9)
    x.data[:] = 1.0
    deg = np.diff(sp.csr_matrix(x).indptr).astype(np.float64)
    d = np.power(deg, -0.5)
    gram = (x.T @ sp.diags(d) @ x).toarray()
    gram[np.diag_indices_from(gram)] += 10.0 * d.mean()
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    w = models.ease_local(x, 29, lam=10.0, neighbourhood=29, user_power=0.25).toarray()
    kept = w != 0
    assert kept.sum() > 100
    np.testing.assert_allclose(w[kept], expected[kept], rtol=1e-3, atol=1e-5)
    assert np.all(expected[~kept] <= 1e-6)  # only the non-positive weights were dropped


def test_local_ease_with_dropout_is_edlae() -> None:
    """With `dropout` q the ridge of item i is lambda + q / (1 - q) x G_ii (Steck 2020's
    emphasized denoising autoencoder, zero diagonal kept): with every item in reach the
    weights are -P_ij / P_jj, P = (G + Lambda)^-1; a popular neighbour is penalised more."""
    x = _clustered(200, 30, 3, 6, seed=8) + _clustered(200, 30, 3, 3, seed=9)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray().astype(np.float64)
    counts = np.diag(gram).copy()
    gram[np.diag_indices_from(gram)] += 2.0 + 0.5 * counts  # q = 1/3: q / (1 - q) = 0.5
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    w = models.ease_local(x, 29, lam=2.0, neighbourhood=29, dropout=1 / 3).toarray()
    kept = w != 0
    assert kept.sum() > 100
    np.testing.assert_allclose(w[kept], expected[kept], rtol=1e-3, atol=1e-5)
    assert np.all(expected[~kept] <= 1e-6)
    plain = models.ease_local(x, 29, lam=2.0, neighbourhood=29).toarray()
    assert not np.allclose(w, plain, atol=1e-3)


def test_local_ease_with_dropout_not_emphasized_is_dlae() -> None:
    """Without the zero-diagonal emphasis (DLAE) B = (G + Lambda)^-1 G: with every item in
    reach its off-diagonal weights are EDLAE's column j times Lambda_jj P_jj."""
    x = _clustered(200, 30, 3, 6, seed=8) + _clustered(200, 30, 3, 3, seed=9)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray().astype(np.float64)
    penalty = np.diag(2.0 + 0.5 * np.diag(gram))  # lambda 2, q = 1/3
    expected = np.linalg.solve(gram + penalty, gram)
    np.fill_diagonal(expected, 0.0)
    w = models.ease_local(x, 29, lam=2.0, neighbourhood=29, dropout=1 / 3, emphasized=False)
    w = w.toarray()
    kept = w != 0
    assert kept.sum() > 100
    np.testing.assert_allclose(w[kept], expected[kept], rtol=1e-3, atol=1e-6)
    assert np.all(expected[~kept] <= 1e-6)


def test_user_weighting_changes_nothing_when_every_user_reads_as_many() -> None:
    """Weights and lambda scale together: readers of equally many books weigh the same."""
    x = _clustered(300, 45, 3, 5, seed=3)
    plain = models.ease_local(x, 10, lam=10.0, neighbourhood=20, cosine=True)
    weighted = models.ease_local(x, 10, lam=10.0, neighbourhood=20, cosine=True, user_power=0.25)
    np.testing.assert_allclose(weighted.toarray(), plain.toarray(), rtol=1e-4, atol=1e-6)


def test_local_ease_keeps_within_neighbourhoods_and_top_k() -> None:
    x = _clustered(200, 60, 3, 6, seed=1)
    w = models.ease_local(x, 5, lam=10.0, neighbourhood=10)
    assert np.diff(w.indptr).max() <= 5
    rows, cols = w.nonzero()
    assert np.all(rows % 3 == cols % 3)  # only books of the same cluster co-occur
    assert np.all(w.data > 0)


def test_validation_split_is_seeded_and_holds_out_a_fifth() -> None:
    x = _clustered(300, 60, 3, 8, seed=2)
    val = models.validation_split(x, max_users=100, seed=5)
    again = models.validation_split(x, max_users=100, seed=5)
    assert np.array_equal(val.users, again.users)
    assert all(np.array_equal(a, b) for a, b in zip(val.held, again.held, strict=True))
    assert len(val.users) == 100
    assert all(len(h) == 2 for h in val.held)  # round(0.2 x 8)
    # the fitting rows plus the held-out items are the original, and never overlap
    for u, held in zip(val.users, val.held, strict=True):
        assert not set(held) & set(val.fit[u].indices)
        assert set(held) | set(val.fit[u].indices) == set(x[u].indices)
    others = np.setdiff1d(np.arange(300), val.users)
    assert (val.fit[others] != x[others]).nnz == 0


def _candidate(name: str, fit: models.Fit, memory: float = 0.0) -> models.Candidate:
    return models.Candidate(name, {}, fit, lambda x: memory)


def test_choice_takes_the_better_model_and_respects_budgets() -> None:
    """Clustered data: item-kNN finds the cluster; a model that recommends the other
    clusters' books cannot. The choice is the better one, whatever the candidates' order."""
    x = _clustered(400, 90, 3, 10, seed=4)

    def wrong_cluster(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
        n = m.shape[1]
        i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        mask = (i % 3) != (j % 3)
        return sp.csr_matrix((np.ones(mask.sum()), (i[mask], j[mask])), shape=(n, n))

    good = _candidate("itemknn", models.itemknn)
    bad = _candidate("wrong", wrong_cluster)
    huge = _candidate("huge", wrong_cluster, memory=1e12)
    for cands in ([bad, good, huge], [good, bad, huge]):
        choice, val, fitted = models.choose(
            x, 20, cands, "wrong", memory_budget=1e9, time_budget=60, min_users=50
        )
        assert choice.model == "itemknn"
        assert choice.validation_ndcg["itemknn:"] > 0.1 > choice.validation_ndcg["wrong:"] == 0
        assert set(choice.fit_seconds) == {"itemknn:", "wrong:"}
        assert "huge:" in choice.skipped  # over the memory budget: never fitted
        assert val is not None and fitted is not None
    # too few users to validate on: the default, unfitted
    choice, val, _ = models.choose(
        x, 20, [bad, good], "wrong", memory_budget=1e9, time_budget=60, min_users=10_000
    )
    assert (choice.model, val, choice.validation_ndcg) == ("wrong", None, {})
    assert "fewer than" in choice.reason


def test_candidates_fit_the_catalog_size() -> None:
    names = [c.name for c in models.candidates(12_000, 100, 5_000)]
    assert names == [
        "ease_local",
        "rp3beta",
        "ease_local",
        "ease_local",
        "ease_local",
        "ease_local",
        "itemknn",
        "ease",
    ]
    weighted = [c.params.get("user_power", 0.0) for c in models.candidates(12_000, 100, 5_000)]
    assert weighted == [0.0, 0.0, 0.0, models.USER_POWER, 0.0, 0.0, 0.0, 0.0]
    local = [c.params for c in models.candidates(12_000, 100, 5_000) if c.name == "ease_local"]
    # each neighbourhood kind at lambda 10 and 50, the second right after the first (it
    # reuses the first's systems)
    assert [(p["cosine"], p["lambda"]) for p in local if "user_power" not in p] == [
        (1.0, 10.0),
        (1.0, 50.0),
        (0.0, 10.0),
        (0.0, 50.0),
    ]
    big = models.candidates(12_000, 100, 100_000)
    assert "ease" not in [c.name for c in big]  # dense EASE only where items^2 fits
    assert {c.params["neighbourhood"] for c in big if c.name == "ease_local"} == {38.0}


def test_blend_scoring_equals_ranking_each_blend() -> None:
    """The weight grid's laid-out scoring gives the NDCG@10 of ranking each blend in full (no
    ties here: a tie at the 10th place may break differently)."""
    from app.reco.selection import _score_blends

    rng = np.random.default_rng(9)
    users, n = 60, 80

    def comp(density: float) -> sp.csr_matrix:
        return sp.random(users, n, density=density, format="csr", random_state=rng)

    comps = {"COLLABORATIVE": comp(0.2), "CONTENT": comp(0.1), "TRENDING": comp(0.05)}
    seen = sp.csr_matrix((rng.random((users, n)) < 0.1).astype(np.float32))
    held = [rng.choice(n, 3, replace=False) for _ in range(users)]
    grid = [{"CONTENT": c, "TRENDING": t} for c in (0.0, 0.3, 1.0) for t in (0.0, 0.5)]
    fast = _score_blends(comps, seen, held, grid)
    for (score, weights), expected in zip(fast, grid, strict=True):
        blend = comps["COLLABORATIVE"] + sum(w * comps[k] for k, w in weights.items())
        slow = models.ndcg(models.top_lists(blend, seen), held)
        assert weights == expected and score == pytest.approx(slow, abs=1e-9)


def _three_held_out(
    rng: np.random.Generator, users: int, n: int
) -> tuple[list[np.ndarray], sp.csr_matrix, sp.csr_matrix]:
    """Three held-out items per user, the same as a 0/1 matrix, and nothing seen."""
    held = [rng.choice(n, 3, replace=False) for _ in range(users)]
    truth = sp.csr_matrix(
        (np.ones(3 * users), (np.repeat(np.arange(users), 3), np.concatenate(held))),
        shape=(users, n),
    )
    return held, truth, sp.csr_matrix((users, n), dtype=np.float32)


def test_the_second_models_weight_is_the_smallest_within_one_error_of_the_best() -> None:
    """A partner that only adds noise gets weight 0; one that clearly helps gets a weight, and
    never one validating below weight 0 (the chosen model alone)."""
    from app.reco.selection import _score_blends, _within_one_error

    rng = np.random.default_rng(5)
    users, n = 400, 60
    held, truth, seen = _three_held_out(rng, users, n)
    noise = sp.random(users, n, density=0.5, format="csr", random_state=rng)
    collab = sp.csr_matrix(noise + 0.3 * truth.multiply(rng.random((users, n)) < 0.5))
    grid = [{"COLLABORATIVE_ALT": w} for w in (0.0, 0.1, 0.2, 0.35, 0.5)]
    useless = sp.random(users, n, density=0.5, format="csr", random_state=rng)
    helpful = sp.csr_matrix(useless + truth.multiply(rng.random((users, n)) < 0.7))
    for alt, gains in ((useless, False), (helpful, True)):
        comps = {"COLLABORATIVE": collab, "COLLABORATIVE_ALT": alt}
        chosen = _within_one_error(comps, seen, held, grid)
        scores = {w["COLLABORATIVE_ALT"]: s for s, w in _score_blends(comps, seen, held, grid)}
        assert (chosen["COLLABORATIVE_ALT"] > 0) == gains
        assert scores[chosen["COLLABORATIVE_ALT"]] >= scores[0.0]


def test_hybrid_leaves_out_a_component_that_only_adds_noise() -> None:
    """The joint weight grid, simplest first: a component whose gain on validation is noise
    gets weight 0 even when a weight of it scores highest (here CONTENT, random scores), one that clearly helps keeps its
    weight, and the chosen blend never validates below the chosen model alone."""
    from app.reco.selection import _score_blends, _within_one_error

    rng = np.random.default_rng(0)
    users, n = 400, 60
    held, truth, seen = _three_held_out(rng, users, n)
    collab = sp.csr_matrix(
        sp.random(users, n, density=0.5, format="csr", random_state=rng)
        + 0.3 * truth.multiply(rng.random((users, n)) < 0.5)
    )
    useless = sp.random(users, n, density=0.5, format="csr", random_state=rng)
    helpful = sp.csr_matrix(
        sp.random(users, n, density=0.5, format="csr", random_state=rng)
        + truth.multiply(rng.random((users, n)) < 0.7)
    )
    comps = {"COLLABORATIVE": collab, "CONTENT": useless, "TRENDING": helpful}
    grid = [{"CONTENT": c, "TRENDING": t} for c in (0.0, 0.01, 0.02, 0.05) for t in (0.0, 0.2, 0.5)]
    grid.sort(key=lambda ws: (sum(v > 0 for v in ws.values()), sum(ws.values())))
    scored: list[tuple[float, dict[str, float]]] = []
    chosen = _within_one_error(comps, seen, held, grid, scored)
    assert chosen["CONTENT"] == 0.0 and chosen["TRENDING"] > 0
    assert max(scored, key=lambda sw: sw[0])[1]["CONTENT"] > 0  # the noise's best weight
    baseline = next(s for s, w in scored if w == {"CONTENT": 0.0, "TRENDING": 0.0})
    assert next(s for s, w in scored if w is chosen) >= baseline
    assert scored == _score_blends(comps, seen, held, grid)


def test_split_by_ids_holds_out_what_held_out_names() -> None:
    """With ids, the held-out books depend on the ids alone: the offline evaluation derives
    study-set topics from the same user's books minus exactly these."""
    x = _clustered(300, 60, 3, 8, seed=2)
    users = [f"u-{i}" for i in range(300)]
    books = [f"b{j}" for j in range(60)]
    val = models.validation_split(x, max_users=100, ids=(users, books))
    assert len(val.users) == 100
    for u, held in zip(val.users, val.held, strict=True):
        mine = [books[j] for j in x[u].indices]
        assert {books[j] for j in held} == models.held_out(users[u], mine)
        assert models.held_out(users[u], list(reversed(mine))) == models.held_out(users[u], mine)
        assert not set(held) & set(val.fit[u].indices)


def test_split_by_ids_validates_the_same_users_whatever_order_the_rows_came_in() -> None:
    """The lists job reads engagement in no fixed order: with ids, the validation users (and so
    the chosen model) must not depend on it."""
    x = _clustered(300, 60, 3, 8, seed=3)
    users = [f"u-{i}" for i in range(300)]
    books = [f"b{j}" for j in range(60)]
    perm = np.random.default_rng(7).permutation(300)
    shuffled = sp.csr_matrix(x[perm])
    a = models.validation_split(x, max_users=100, ids=(users, books))
    b = models.validation_split(shuffled, max_users=100, ids=([users[i] for i in perm], books))
    assert len(a.users) == 100
    held_a = {users[u]: h.tolist() for u, h in zip(a.users, a.held, strict=True)}
    held_b = {users[perm[u]]: h.tolist() for u, h in zip(b.users, b.held, strict=True)}
    assert held_a == held_b


def _busy(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU (what the selection's time budget counts)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_a_candidate_that_would_overrun_the_time_budget_is_not_started() -> None:
    x = _clustered(400, 90, 3, 10, seed=4)

    def slow(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
        _busy(0.4)
        return models.itemknn(m, k)

    cands = [_candidate("a", slow), _candidate("b", slow)]
    choice, _, _ = models.choose(
        x, 20, cands, "a", memory_budget=1e9, time_budget=0.6, min_users=50
    )
    assert set(choice.fit_seconds) == {"a:"}
    assert "would overrun" in choice.skipped["b:"]


def test_waiting_for_a_busy_machine_does_not_spend_the_time_budget() -> None:
    """The budget counts CPU seconds of the selection's thread: fits that are slow only in
    wall time (the machine busy with other work) are all fitted, so the choice does not
    depend on the machine's load."""
    x = _clustered(400, 90, 3, 10, seed=4)

    def waiting(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
        time.sleep(0.4)
        return models.itemknn(m, k)

    cands = [_candidate("a", waiting), _candidate("b", waiting)]
    choice, _, _ = models.choose(
        x, 20, cands, "a", memory_budget=1e9, time_budget=0.3, min_users=50
    )
    assert set(choice.fit_seconds) == {"a:", "b:"} and not choice.skipped
    assert min(choice.fit_seconds.values()) >= 0.4  # the wall time is still what is reported


def test_local_ease_fits_of_one_matrix_share_its_gram_and_weigh_the_same() -> None:
    """The selection fits several local EASE candidates on one matrix: they share its Gram
    blocks (and, for the same neighbourhoods, the gathered systems) and give exactly the
    weights of fits that compute everything afresh; `release` drops what they share."""
    x = _clustered(300, 90, 3, 8, seed=5)
    grid = [(10.0, True), (50.0, True), (50.0, False), (10.0, True)]
    shared = [models.ease_local(x, 8, lam=lam, neighbourhood=12, cosine=c) for lam, c in grid]
    models.release()
    for (lam, cosine), w in zip(grid, shared, strict=True):
        alone = models.ease_local(x.copy(), 8, lam=lam, neighbourhood=12, cosine=cosine)
        models.release()
        assert (w != alone).nnz == 0
    assert shared[0].nnz > 0 and (shared[0] != shared[1]).nnz > 0


def test_another_lambda_on_the_last_neighbourhoods_is_fitted_past_the_budget() -> None:
    """Local EASE candidates that differ only in lambda share the gathered systems: the
    second costs a batch of solves, so it is fitted even when the first spent the budget;
    other neighbourhoods are still skipped."""
    x = _clustered(400, 90, 3, 10, seed=4)

    def slowly(c: models.Candidate) -> models.Candidate:
        def fit(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
            _busy(0.3)
            return c.fit(m, k)

        return models.Candidate(c.name, c.params, fit, c.memory)

    cands = [slowly(c) for c in models.candidates(0, 12, 90) if c.name == "ease_local"]
    choice, _, _ = models.choose(
        x, 20, cands, "ease_local", memory_budget=1e12, time_budget=0.2, min_users=50
    )
    assert list(choice.fit_seconds) == [
        "ease_local:lambda=10,neighbourhood=20,cosine=1",
        "ease_local:lambda=50,neighbourhood=20,cosine=1",
    ]
    assert choice.skipped == {
        "ease_local:lambda=10,neighbourhood=20,cosine=1,user_power=0.25": "time budget spent",
        "ease_local:lambda=10,neighbourhood=20,cosine=0": "time budget spent",
        "ease_local:lambda=50,neighbourhood=20,cosine=0": "time budget spent",
    }


def test_another_lambda_stays_cheap_after_another_model_was_fitted() -> None:
    """RP3beta, fitted between two local EASE lambdas on the same neighbourhoods, does not
    touch the systems the first gathered: the second lambda is still fitted past the budget,
    so a faster first fit that leaves room for RP3beta does not lose the lambda-50 fit."""
    x = _clustered(400, 90, 3, 10, seed=4)

    def slowly(c: models.Candidate, seconds: float) -> models.Candidate:
        def fit(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
            _busy(seconds)
            return c.fit(m, k)

        return models.Candidate(c.name, c.params, fit, c.memory)

    cands = [
        slowly(c, 0.3 if c.name == "ease_local" else 0.4)
        for c in models.candidates(0, 12, 90)
        if c.name in ("ease_local", "rp3beta")
    ]
    choice, _, _ = models.choose(
        x, 20, cands, "ease_local", memory_budget=1e12, time_budget=0.9, min_users=50
    )
    assert list(choice.fit_seconds)[:3] == [
        "ease_local:lambda=10,neighbourhood=20,cosine=1",
        "rp3beta:alpha=0.75,beta=0.5",
        "ease_local:lambda=50,neighbourhood=20,cosine=1",
    ]


@pytest.mark.parametrize("k", [1, 3, 40])
def test_top_k_rows_equals_a_full_sort_of_each_row(k: int) -> None:
    """The k best positive entries per row (ties to the lower column) are those of sorting
    every row, whether or not rows are long enough to be cut at their k-th value first."""
    rng = np.random.default_rng(k)
    dense = sp.random(60, 500, density=0.2, random_state=rng).toarray()
    dense = np.where(dense != 0, np.round(dense * 6) - 1, 0)  # ties, zeros and negatives
    dense[7] = 0  # an empty row
    block = sp.csr_matrix(dense)
    rows, cols, vals = models.top_k_rows(block, k, offset=3)
    for r in range(60):
        want = sorted(
            ((-v, c) for c, v in enumerate(dense[r]) if v > 0 and c != r + 3), key=lambda t: t
        )[:k]
        mine = rows == r + 3
        assert list(zip((-vals[mine]).tolist(), cols[mine].tolist(), strict=True)) == want


def test_the_selection_budget_shrinks_only_above_50000_books() -> None:
    """The goodbooks catalog (10,000 books) and mid sizes keep the configured budget; the
    large scale (100,000 books) gets half of it."""
    from app.reco import selection

    assert selection.time_budget(60.0, 10_000) == 60.0
    assert selection.time_budget(60.0, 50_000) == 60.0
    assert selection.time_budget(60.0, 100_000) == 30.0


def test_the_second_model_is_the_partner_that_blends_best_not_the_best_alone() -> None:
    """Two partners for the chosen model: one that is better alone but finds what the chosen
    model finds already, one weaker alone that finds what it misses. HYBRID's second model is
    the one whose blend validates best (the second), with a weight; a partner of random scores
    gains nothing beyond the noise, and no partner is taken."""
    from app.reco.selection import _pick_partner, _score_blends

    rng = np.random.default_rng(16)
    users, n = 400, 60
    held, truth, seen = _three_held_out(rng, users, n)
    found = truth.multiply(rng.random((users, n)) < 0.5)  # what the chosen model finds
    missed = truth - found

    def noise() -> sp.csr_matrix:
        return sp.random(users, n, density=0.5, format="csr", random_state=rng)

    collab = sp.csr_matrix(noise() + 2 * found)
    redundant = sp.csr_matrix(noise() + found)
    complementary = sp.csr_matrix(noise() + missed.multiply(rng.random((users, n)) < 0.7))

    def alone(c: sp.csr_matrix) -> float:
        return _score_blends({"COLLABORATIVE": c}, seen, held, [{}])[0][0]

    assert alone(redundant) > alone(complementary)
    alts = {"itemknn:shrink=10": redundant, "rp3beta:alpha=0.75,beta=0.5": complementary}
    partner, weight = _pick_partner(collab, alts, seen, held)
    assert partner == "rp3beta:alpha=0.75,beta=0.5" and weight > 0
    shuffled = collab.copy()  # random scores on the chosen model's own candidates
    shuffled.data = rng.random(shuffled.nnz)
    assert _pick_partner(collab, {"itemknn:shrink=10": shuffled}, seen, held) == (None, 0.0)
    assert _pick_partner(collab, {}, seen, held) == (None, 0.0)


def test_the_gather_by_laid_out_rows_reads_what_the_dense_gram_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above DENSE_GRAM_MAX_ITEMS the systems are read from a few rows of G laid out at a time
    (rows that straddle Gram blocks, padded neighbourhoods): the same cells, bit for bit."""
    monkeypatch.setattr(models, "CHUNK", 7)  # Gram blocks of 7 rows, laid out 3 at a time
    monkeypatch.setattr(models, "GATHER_ROWS", 3)
    rng = np.random.default_rng(5)
    read = rng.random((60, 40)) < 0.15
    read[:, 39] = False  # an item no one read: its neighbourhood is padded with the dummy item
    x = sp.csr_matrix(read.astype(np.float32))
    blocks = models._gram_blocks(x)
    nbr = models._nearest(x, blocks, 12, cosine=True)
    assert (nbr == x.shape[1]).any()
    dense_a, dense_b = models._gather(blocks, nbr)
    monkeypatch.setattr(models, "DENSE_GRAM_MAX_ITEMS", 0)
    a, b = models._gather(blocks, nbr)
    assert np.array_equal(a, dense_a) and np.array_equal(b, dense_b)
    assert np.count_nonzero(a) > 1000
