"""How HYBRID fuses its collaborative components: each fusion rule run through the lists job's
partner rule (`selection._pick_partner`) on the validation split, and the blend it picks scored
on the test users (the splits of `bench.reco_harness`; numpy, no database):

    python -m bench.reco_fusion /work/shared/data/goodbooks /tmp/quality7/f_gb --main uw10 \
        --partners rp,knn

Each variant's raw scores (every user's best 200 outside their own books, seeds @ W as the
service sums the lists) are cached in the second folder, one .npz per variant and phase, so a
second run only fuses and blends. A fusion turns one component's raw top list into the values
the blend sums (`selection._score_blends`): `max` (today's: the best `pool` divided by the
row's maximum), `sum` (by the row's sum), `r10` (by the score at rank 10), `minmax`
((v - min) / (max - min) over the list), `z` ((v - min) / standard deviation: a z-score
shifted so the list's last is 0, as a missing book is), `rrK` (reciprocal rank,
(K + 1) / (K + rank)); `:200` after a name takes the best 200 instead of 100. `--gammas`
adds a second-stage popularity correction, every component's value divided by the book's
training count ^ gamma (so the blended score is), gamma chosen on validation by the
one-standard-error rule (0 first). Written for issue 16's ninth pass (docs/recommendations.md).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.reco import models, selection
from bench import reco_variants

RAW = 200  # raw scores kept per user and component
Fusion = Callable[[sp.csr_matrix], sp.csr_matrix]


def raw_top(scores: sp.csr_matrix, seeds: sp.csr_matrix) -> sp.csr_matrix:
    """What this tool keeps of a variant's scores: each user's best `RAW` outside their books,
    unnormalised, so every fusion can be applied afterwards."""
    scores = sp.csr_matrix(scores, dtype=np.float64)
    masked = scores - scores.multiply(seeds.astype(bool))
    masked.eliminate_zeros()
    r, c, v = models.top_k_rows(masked, RAW, diagonal=True)
    return sp.csr_matrix((v, (r, c)), shape=scores.shape)


def _ranked(raw: sp.csr_matrix, pool: int) -> tuple[np.ndarray, ...]:
    """(rows, cols, values, rank from 0) of each row's best `pool`, best first."""
    coo = raw.tocoo()
    order = np.lexsort((coo.col, -coo.data, coo.row))
    rows, cols, vals = coo.row[order], coo.col[order], coo.data[order]
    starts = np.searchsorted(rows, np.arange(raw.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < pool
    return rows[keep], cols[keep], vals[keep], rank[keep]


def fusion(spec: str) -> Fusion:
    """The fusion a name stands for (see the module's docstring)."""
    name, _, size = spec.partition(":")
    pool = int(size or 100)

    def apply(raw: sp.csr_matrix) -> sp.csr_matrix:
        rows, cols, vals, rank = _ranked(raw, pool)
        n = raw.shape[0]

        if name == "max":
            top = np.zeros(n)
            np.maximum.at(top, rows, vals)
            out = vals / top[rows]
        elif name == "sum":
            total = np.bincount(rows, vals, minlength=n)
            out = vals / total[rows]
        elif name == "r10":
            at = np.zeros(n)
            last = np.zeros(n)
            np.maximum.at(last, rows, rank)
            pick = rank == np.minimum(9, last[rows])
            at[rows[pick]] = vals[pick]
            out = vals / at[rows]
        elif name in ("minmax", "z"):
            top = np.zeros(n)
            np.maximum.at(top, rows, vals)
            low = np.full(n, np.inf)
            np.minimum.at(low, rows, vals)
            if name == "minmax":
                span = top - low
            else:
                count = np.bincount(rows, minlength=n)
                mean = np.bincount(rows, vals, minlength=n) / np.maximum(count, 1)
                var = np.bincount(rows, (vals - mean[rows]) ** 2, minlength=n)
                span = np.sqrt(var / np.maximum(count, 1))
            span = np.where(span > 0, span, 1.0)
            out = (vals - low[rows]) / span[rows]
        elif name.startswith("rr"):
            k = float(name[2:])
            out = (k + 1) / (k + 1 + rank)
        else:
            raise SystemExit(f"unknown fusion {spec!r}")
        return sp.csr_matrix((out, (rows, cols)), shape=raw.shape)

    return apply


def _ndcg(
    comps: dict[str, sp.csr_matrix],
    seen: sp.csr_matrix,
    held: list[np.ndarray],
    weights: dict[str, float],
) -> tuple[float, np.ndarray]:
    per: list[np.ndarray] = []
    found = selection._score_blends(comps, seen, held, [weights], per)
    return found[0][0], per[0]


def report(
    cache: Path, main: str, partners: list[str], fusions: list[str], gammas: list[float]
) -> None:
    stored = pickle.loads((cache / "held.pkl").read_bytes())

    def raw(phase: str, name: str) -> sp.csr_matrix:
        return sp.load_npz(cache / f"{phase}_{name}.npz")

    seen = {ph: raw(ph, "seen") for ph in ("val", "test")}
    base: dict[str, np.ndarray] = {}
    for spec in fusions:
        f = fusion(spec)
        comp = {ph: {n: f(raw(ph, n)) for n in [main, *partners]} for ph in ("val", "test")}
        pick, weight = selection._pick_partner(
            comp["val"][main], {p: comp["val"][p] for p in partners}, seen["val"], stored["val"]
        )
        line = []
        for ph in ("val", "test"):
            comps = {"COLLABORATIVE": comp[ph][main]}
            ws: dict[str, float] = {}
            if pick is not None:
                comps["P"], ws = comp[ph][pick], {"P": weight}
            score, per = _ndcg(comps, seen[ph], stored[ph], ws)
            note = f"{ph} {score:.5f}"
            if ph in base:
                diff = per - base[ph]
                note += f" ({diff.mean():+.5f} se {diff.std(ddof=1) / np.sqrt(len(diff)):.5f})"
            else:
                base[ph] = per
            line.append(note)
        print(f"{spec:<10} picks {pick} at {weight:g}: " + "  ".join(line), flush=True)
        for p in partners:
            for ph in ("val", "test"):
                comps = {"COLLABORATIVE": comp[ph][main], "P": comp[ph][p]}
                found = selection._score_blends(
                    comps, seen[ph], stored[ph], [{"P": w} for w in reco_variants.WEIGHTS]
                )
                cells = " ".join(
                    f"{w:g}:{s:.4f}" for (s, _), w in zip(found, reco_variants.WEIGHTS, strict=True)
                )
                print(f"    {ph:<4} + {p:<8} {cells}")
        if gammas and pick is not None:
            popularity(comp, seen, stored, main, pick, weight, gammas)


def popularity(
    comp: dict[str, dict[str, sp.csr_matrix]],
    seen: dict[str, sp.csr_matrix],
    stored: dict[str, Any],
    main: str,
    pick: str,
    weight: float,
    gammas: list[float],
) -> None:
    """The picked blend with every value divided by the book's count ^ gamma; gamma by the
    one-standard-error rule on validation (0 first), and each gamma's test figure."""
    tried = [{"COLLABORATIVE": 1.0, "P": weight, "G": g} for g in gammas]
    per_phase: dict[str, list[tuple[float, np.ndarray]]] = {}
    for ph in ("val", "test"):
        pop = np.maximum(stored["pop"][ph], 1.0)
        out = []
        for ws in tried:
            scale = sp.diags(pop ** -ws["G"])
            comps = {"COLLABORATIVE": comp[ph][main] @ scale, "P": comp[ph][pick] @ scale}
            out.append(_ndcg(comps, seen[ph], stored[ph], {"P": weight}))
        per_phase[ph] = out
    val = per_phase["val"]
    best = max(range(len(val)), key=lambda i: val[i][0])
    chosen = best
    for i, (score, per) in enumerate(val):
        diff = val[best][1] - per
        if score >= val[0][0] and diff.mean() <= diff.std(ddof=1) / np.sqrt(len(diff)):
            chosen = i
            break
    cells = " ".join(
        f"{g:g}:{v[0]:.4f}/{t[0]:.4f}"
        for g, v, t in zip(gammas, val, per_phase["test"], strict=True)
    )
    print(f"    popularity gamma val/test {cells}; rule picks {gammas[chosen]:g}")


def main() -> None:
    parser = reco_variants.arguments(__doc__, "folder for the raw component scores")
    parser.add_argument(
        "--fusions",
        default="max,max:200,sum,sum:200,r10,r10:200,minmax,minmax:200,z,z:200,rr10,rr60,rr60:200",
    )
    parser.add_argument("--gammas", default="", help="e.g. 0,0.02,0.05,0.1")
    args = parser.parse_args()
    partners = [p for p in args.partners.split(",") if p]
    reco_variants.fit(
        args.dataset,
        args.cache,
        [args.main, *partners],
        args.sample,
        args.val_users,
        args.val_share,
        keep=raw_top,
        popularity=True,
    )
    gammas = [float(g) for g in args.gammas.split(",") if g]
    report(args.cache, args.main, partners, args.fusions.split(","), gammas)


if __name__ == "__main__":
    main()
