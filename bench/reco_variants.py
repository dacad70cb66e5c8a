"""Variants of the collaborative models behind HYBRID, each scored alone, blended with the
chosen model, and run through the lists job's partner rule (`selection._pick_partner`), on the
validation split and on the test users of a goodbooks-format folder (the splits of
`bench.reco_harness`; numpy, no database):

    python -m bench.reco_variants /work/shared/data/goodbooks /tmp/q5/c_gb --main uw10 \
        --partners rp,rp_a1.0_b0.5,rp_k200,knn

Each variant's validation and test components (every user's best 100 normalised to its
maximum, as the service blends them) are cached in the second folder, one .npz per variant
and phase, so a second run only blends. Variant names: `cos10`, `cos50`, `cc10` (co-count
neighbourhoods), `uw10` (user-weighted) local EASE at M 100 (`_m150` / `_m200` for another
neighbourhood, `_pQ` for the dropout penalty of EDLAE, e.g. `cc5_p0.25`: lambda 5, q 0.25),
`knn`, and `rp` (RP3beta alpha 0.75, beta 0.5, top 50) or `rp_aA_bB` / `rp_kK` for other
settings. Each variant alone is also compared with the main one paired over the users (the
difference and its standard error, what the one-standard-error rule weighs). `--sample 0`
scores every test user (the full protocol; use another cache folder); `--val-users` and
`--val-share` change the validation split (the lists job's: 5,000 users holding out 0.2).
Written for issue 16's seventh pass, extended in the eighth (docs/recommendations.md).
"""

from __future__ import annotations

import argparse
import pickle
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.reco import models, selection
from bench import reco_harness, reco_spectral

Fit = Callable[[sp.csr_matrix], sp.csr_matrix]
WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.35, 0.5)


def variant(name: str, items: int) -> Fit:
    """The fit a variant name stands for (see the module's docstring)."""
    m = int(max(20, min(100, np.sqrt(1.5e8 / max(items, 1)))))
    if name == "knn":
        return lambda z: models.itemknn(z, 50, shrink=10.0)
    found = re.fullmatch(r"rp(?:_a([\d.]+))?(?:_b([\d.]+))?(?:_k(\d+))?", name)
    if found:
        alpha, beta = float(found[1] or 0.75), float(found[2] or 0.5)
        k = int(found[3] or 50)
        return lambda z: models.rp3beta(z, k, alpha=alpha, beta=beta)
    found = re.fullmatch(r"(cos|cc|uw|uwcc)([\d.]+)(?:_(p|d)([\d.]+))?(?:_m(\d+))?", name)
    if found:
        kind, lam, hood = found[1], float(found[2]), int(found[5] or m)
        drop, emphasized = float(found[4] or 0), found[3] != "d"
        power = models.USER_POWER if kind.startswith("uw") else 0.0
        return lambda z: models.ease_local(
            z,
            50,
            lam=lam,
            neighbourhood=hood,
            cosine=kind in ("cos", "uw"),
            user_power=power,
            dropout=drop,
            emphasized=emphasized,
        )
    found = re.fullmatch(r"(gf|svd|gfcf)(\d+)(?:_a([\d.]+))?(?:_k(\d+))?", name)
    if found:
        kind, rank, alpha = found[1], int(found[2]), float(found[3] or 0.3)
        top = int(found[4] or 50)
        return lambda z: reco_spectral.spectral(z, top, rank, kind=kind, alpha=alpha)
    raise SystemExit(f"unknown variant {name!r}")


def normalised(scores: sp.csr_matrix, seeds: sp.csr_matrix) -> sp.csr_matrix:
    """What this tool keeps of a variant's scores: the service's blend input, each user's best
    100 outside their books divided by the best (`selection._top_normalised`)."""
    return selection._top_normalised(scores, seeds, 100)


def fit(
    directory: Path,
    cache: Path,
    names: list[str],
    sample: int,
    val_users: int,
    val_share: float,
    keep: Callable[[sp.csr_matrix, sp.csr_matrix], sp.csr_matrix] = normalised,
    popularity: bool = False,
) -> None:
    """Each variant fitted per phase (the validation split's fit, then everything) and what
    `keep` makes of the users' scores (seeds @ W, seeds) saved as `<phase>_<name>.npz`, with
    the held-out books in held.pkl (and each phase's book counts with `popularity`)."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = [n for n in names for ph in ("val", "test") if not (cache / f"{ph}_{n}.npz").exists()]
    if not todo and (cache / "held.pkl").exists():
        return
    data = reco_harness.load(directory, sample or 10**9, val_users, val_share)
    x, val = data["x"], data["val"]
    held: dict[str, Any] = {"val": val.held, "test": data["held"]}
    if popularity:
        held["pop"] = {
            "val": np.asarray(val.fit.sum(axis=0)).ravel(),
            "test": np.asarray(x.sum(axis=0)).ravel(),
        }
    (cache / "held.pkl").write_bytes(pickle.dumps(held))
    for phase, rows, users in (("val", val.fit, val.users), ("test", x, data["test"])):
        seeds = sp.csr_matrix(rows[users], dtype=np.float32)
        sp.save_npz(cache / f"{phase}_seen.npz", seeds)
        for name in names:
            path = cache / f"{phase}_{name}.npz"
            if path.exists():
                continue
            started = time.process_time()
            w = variant(name, x.shape[1])(rows)
            sp.save_npz(path, keep(seeds @ w, seeds))
            print(f"fitted {phase} {name}: {time.process_time() - started:.1f} CPU s", flush=True)
            models.release()


def report(cache: Path, main: str, partners: list[str]) -> None:
    held = pickle.loads((cache / "held.pkl").read_bytes())

    def comp(phase: str, name: str) -> sp.csr_matrix:
        return sp.load_npz(cache / f"{phase}_{name}.npz")

    for phase in ("val", "test"):
        seen = comp(phase, "seen")
        base: np.ndarray | None = None
        for name in [main, *partners]:
            per: list[np.ndarray] = []
            score = selection._score_blends(
                {"COLLABORATIVE": comp(phase, name)}, seen, held[phase], [{}], per
            )
            line = f"{phase:<4} alone {name:<16} ndcg@10 {score[0][0]:.4f}"
            if base is None:
                base = per[0]
            else:  # paired over the users: what the one-standard-error rule compares
                diff = per[0] - base
                error = float(diff.std(ddof=1)) / np.sqrt(len(diff))
                line += f"  vs {main} {diff.mean():+.5f} (se {error:.5f})"
            print(line)
        for p in partners:
            comps = {"COLLABORATIVE": comp(phase, main), "P": comp(phase, p)}
            found = selection._score_blends(comps, seen, held[phase], [{"P": w} for w in WEIGHTS])
            cells = " ".join(f"{w:g}:{s:.4f}" for (s, _), w in zip(found, WEIGHTS, strict=True))
            print(f"{phase:<4} {main} + {p:<16} {cells}")
    alts = {p: comp("val", p) for p in partners}
    pick, weight = selection._pick_partner(
        comp("val", main), alts, comp("val", "seen"), held["val"]
    )
    test = comp("test", main)
    if pick is not None:
        comps = {"COLLABORATIVE": test, "P": comp("test", pick)}
        grid = [{"P": weight}]
    else:
        comps, grid = {"COLLABORATIVE": test}, [{}]
    score = selection._score_blends(comps, comp("test", "seen"), held["test"], grid)[0][0]
    print(f"the partner rule picks {pick} at {weight:g}: test ndcg@10 {score:.5f}")


def arguments(doc: str | None, cache_help: str) -> argparse.ArgumentParser:
    """The arguments this tool and `bench.reco_fusion` share: data, cache, models, splits."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("cache", type=Path, help=cache_help)
    parser.add_argument("--main", default="uw10", help="the chosen model's variant")
    parser.add_argument("--partners", default="rp,knn", help="comma-separated variants")
    parser.add_argument(
        "--sample", type=int, default=10_000, help="test users (0: all, the full protocol)"
    )
    parser.add_argument(
        "--val-users", type=int, default=5000, help="validated users (the lists job's 5,000)"
    )
    parser.add_argument(
        "--val-share", type=float, default=0.2, help="share a validated user holds out (0.2)"
    )
    return parser


def main() -> None:
    parser = arguments(__doc__, "folder for the fitted components")
    args = parser.parse_args()
    partners = [p for p in args.partners.split(",") if p]
    fit(
        args.dataset,
        args.cache,
        [args.main, *partners],
        args.sample,
        args.val_users,
        args.val_share,
    )
    report(args.cache, args.main, partners)


if __name__ == "__main__":
    main()
