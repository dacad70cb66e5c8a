"""A fast numpy check of collaborative models and HYBRID-style blends on a goodbooks-format
folder, with the splits `bookbridge evaluate` and the lists job use, in minutes instead of a
full evaluation (no database, no service):

    python -m bench.reco_harness /work/shared/data/goodbooks [--cache /tmp/q]

- test: `app.evaluate.dataset.split` (20% of each user's pairs held out, seed 42) and the same
  seeded sample of 10,000 users as `bookbridge evaluate --sample 10000`;
- validation: `app.reco.models.validation_split` of the training pairs by ids, as the lists
  job makes it (up to 5,000 users hold out a fifth);
- each model's top-50 lists summed over a user's training books (as the service sums the
  `collab` lists), the user's books excluded; a blend adds each component's best 100
  normalised to its maximum (as `scoring.blend`). TOPIC, CONTENT and TRENDING are left out.

Prints NDCG@10 on validation and test users per configuration. The service's COLLABORATIVE
on goodbooks (0.2082) is this harness's local EASE figure to the fourth digit.

`--local` instead prints each local EASE variant alone (cosine or co-count neighbourhoods,
lambda 10 / 25 / 50, and the user-weighted ones at lambda 10): which lambda and neighbourhood
the validation split prefers against which the test users do.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from app.evaluate import dataset
from app.reco import models

K = 10
DISCOUNT = 1.0 / np.log2(np.arange(2, K + 2))


def load(
    directory: Path, sample: int = 10_000, val_users: int = 5000, val_share: float = 0.2
) -> dict:
    split = dataset.split(directory)
    with (directory / "books.csv").open(newline="", encoding="utf-8") as fh:
        known = {r["book_id"] for r in csv.DictReader(fh)}
    users: dict[str, int] = {}
    books: dict[str, int] = {}
    rows, cols = [], []
    for user, mine in split.train.items():
        for b in dict.fromkeys(b for b in mine if b in known):
            rows.append(users.setdefault(user, len(users)))
            cols.append(books.setdefault(b, len(books)))
    x = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(users), len(books))
    )
    test = sorted(split.test)
    if sample < len(test):
        test = sorted(random.Random(dataset.SEED).sample(test, sample))
    test = [u for u in test if u in users]
    held = [np.array(sorted(books[b] for b in split.test[u] if b in books)) for u in test]
    names = list(books)
    ids = ([f"u-{u}" for u in users], names)
    val = models.validation_split(x, share=val_share, max_users=val_users, ids=ids)
    return {"x": x, "test": np.array([users[u] for u in test]), "held": held, "val": val}


def ndcg(score: np.ndarray, held: list[np.ndarray]) -> np.ndarray:
    top = np.argpartition(-score, K - 1, axis=1)[:, :K]
    values = np.take_along_axis(score, top, 1)
    order = np.argsort(-values, axis=1, kind="stable")
    top, values = np.take_along_axis(top, order, 1), np.take_along_axis(values, order, 1)
    out = np.zeros(len(held))
    for i, h in enumerate(held):
        if len(h):
            hit = np.isin(top[i], h) & np.isfinite(values[i])
            out[i] = (hit * DISCOUNT).sum() / DISCOUNT[: min(K, len(h))].sum()
    return out


def normalised_top(score: np.ndarray, seen: np.ndarray, limit: int = 100) -> np.ndarray:
    s = np.where(seen | (score < 0), 0.0, score)
    kth = -np.partition(-s, limit - 1, axis=1)[:, limit - 1 : limit]
    s[s < kth] = 0.0
    top = s.max(axis=1, keepdims=True)
    return s / np.where(top > 0, top, 1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", type=Path)
    p.add_argument("--local", action="store_true", help="local EASE variants alone")
    args = p.parse_args()
    data = load(args.dataset)
    x, val = data["x"], data["val"]
    m = int(max(20, min(100, np.sqrt(1.5e8 / x.shape[1]))))
    if args.local:
        local_variants(data, m)
        return
    fits = {
        "local EASE": lambda z: models.ease_local(z, 50, lam=10.0, neighbourhood=m, cosine=True),
        "user-weighted local EASE": lambda z: models.ease_local(
            z, 50, lam=10.0, neighbourhood=m, cosine=True, user_power=models.USER_POWER
        ),
        "RP3beta": lambda z: models.rp3beta(z, 50, alpha=0.75, beta=0.5),
    }
    configs = [("local EASE", None, 0.0), ("user-weighted local EASE", None, 0.0)]
    configs += [("local EASE", "RP3beta", w) for w in (0.1, 0.2, 0.35)]
    configs += [("local EASE", "user-weighted local EASE", w) for w in (0.2, 0.35, 0.5)]
    configs += [("user-weighted local EASE", "RP3beta", w) for w in (0.1, 0.2, 0.35)]
    for phase, fit, users, held in (
        ("validation", val.fit, val.users, val.held),
        ("test", x, data["test"], data["held"]),
    ):
        w = {name: f(fit) for name, f in fits.items()}
        scores: dict[tuple[str, str | None, float], list[np.ndarray]] = {}
        for start in range(0, len(users), 2000):
            seeds = fit[users[start : start + 2000]]
            seen = seeds.toarray() > 0
            raw = {name: (seeds @ wi).toarray() for name, wi in w.items()}
            norm = {name: normalised_top(r, seen) for name, r in raw.items()}
            for main_model, partner, weight in configs:
                s = norm[main_model] + (weight * norm[partner] if partner else 0.0)
                s[seen | (s <= 0)] = -np.inf
                part = ndcg(s, held[start : start + 2000])
                scores.setdefault((main_model, partner, weight), []).append(part)
        for (main_model, partner, weight), parts in scores.items():
            label = main_model + (f" + {weight:g} x {partner}" if partner else "")
            print(f"{phase:<10} {label:<55} ndcg@10 {np.concatenate(parts).mean():.4f}")


def local_variants(data: dict, m: int) -> None:
    """NDCG@10 of each local EASE variant alone, on validation and test users."""
    x, val = data["x"], data["val"]
    print(f"validation fit holds {val.fit.nnz / x.nnz:.3f} of the pairs")
    variants = [(c, 0.0, lam) for c in (True, False) for lam in (10.0, 25.0, 50.0)]
    variants += [(c, models.USER_POWER, 10.0) for c in (True, False)]
    for phase, fit, users, held in (
        ("validation", val.fit, val.users, val.held),
        ("test", x, data["test"], data["held"]),
    ):
        for cosine, power, lam in variants:
            w = models.ease_local(
                fit, 50, lam=lam, neighbourhood=m, cosine=cosine, user_power=power
            )
            parts = []
            for start in range(0, len(users), 2000):
                seeds = fit[users[start : start + 2000]]
                s = (seeds @ w).toarray()
                s[(seeds.toarray() > 0) | (s <= 0)] = -np.inf
                parts.append(ndcg(s, held[start : start + 2000]))
            label = f"{'cosine' if cosine else 'co-count'} lambda {lam:g} user_power {power:g}"
            print(f"{phase:<10} local EASE {label:<40} ndcg@10 {np.concatenate(parts).mean():.4f}")


if __name__ == "__main__":
    main()
