"""Which second collaborative model HYBRID should blend with the chosen one, and at what
weight: every selection candidate fitted on the lists job's validation split and on all
training pairs of a goodbooks-format folder (the splits of `bench.reco_harness`), each
one's best 100 per user normalised to its maximum (as the service blends them), then the
chosen model (best on validation) blended with each other candidate at each weight, and the
partner rules side by side (NDCG@10 on validation and test users; no database):

    python -m bench.reco_partners /work/shared/data/goodbooks /tmp/q4_exp/gb

The second argument caches the fits (one .npz per candidate and phase): a second run only
blends. Rules: `current` is the best other-family candidate alone at 0 / 0.1 / 0.2 / 0.35 /
0.5 (main before the sixth pass of issue 16), `by blend` the partner and weight chosen
together (`selection._pick_partner`, what the lists job does now), `fine` adds 0.05 / 0.15 /
0.3 to the weights, `any` lets EASE variants partner EASE.
"""

from __future__ import annotations

import argparse
import pickle
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from app.reco import models, selection
from bench import reco_harness

WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.5)
COARSE = tuple(w for w in selection.SECOND_GRID if w > 0)


def fit_all(directory: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if (out / "held.pkl").exists():
        return
    data = reco_harness.load(directory)
    x, val = data["x"], data["val"]
    cands = models.candidates(12_000, 100, x.shape[1], 200.0)
    for phase, fit, users in (("val", val.fit, val.users), ("test", x, data["test"])):
        seeds = sp.csr_matrix(fit[users], dtype=np.float32)
        sp.save_npz(out / f"{phase}_seen.npz", seeds)
        for cand in cands:
            started = time.process_time()
            w = cand.fit(fit, 50)
            comp = selection._top_normalised(seeds @ w, seeds, 100)
            sp.save_npz(out / f"{phase}_{_file(models.candidate_key(cand))}.npz", comp)
            print(phase, models.candidate_key(cand), f"{time.process_time() - started:.1f} CPU s")
        models.release()
    (out / "held.pkl").write_bytes(pickle.dumps({"val": val.held, "test": data["held"]}))


def _file(key: str) -> str:
    return key.replace(":", "_").replace(",", "_")


def blend(out: Path) -> None:
    held = pickle.loads((out / "held.pkl").read_bytes())
    names = sorted({p.name[4:-4] for p in out.glob("val_*.npz")} - {"seen"})
    comp = {ph: {n: sp.load_npz(out / f"{ph}_{n}.npz") for n in names} for ph in ("val", "test")}
    seen = {ph: sp.load_npz(out / f"{ph}_seen.npz") for ph in ("val", "test")}

    def score(ph: str, main: str, partner: str | None = None, ws=(0.0,), per=None) -> list:
        comps = {"COLLABORATIVE": comp[ph][main]}
        if partner:
            comps["P"] = comp[ph][partner]
        return selection._score_blends(comps, seen[ph], held[ph], [{"P": w} for w in ws], per)

    alone = {n: (score("val", n)[0][0], score("test", n)[0][0]) for n in names}
    for n in names:
        print(f"alone {n:<62} validation {alone[n][0]:.4f} test {alone[n][1]:.4f}")
    chosen = max(names, key=lambda n: alone[n][0])
    print(f"chosen {chosen}; partner: weight validation / test")
    table: dict[str, tuple[list, list, list]] = {}
    for p in sorted((n for n in names if n != chosen), key=lambda n: -alone[n][0]):
        per: list[np.ndarray] = []
        v, t = score("val", chosen, p, WEIGHTS, per), score("test", chosen, p, WEIGHTS)
        table[p] = (v, t, per)
        cells = " ".join(
            f"{w:g}:{a[0]:.4f}/{b[0]:.4f}" for w, a, b in zip(WEIGHTS, v, t, strict=True)
        )
        print(f"  {p:<62} {cells}")

    def family(n: str) -> str:
        return "ease" if n.startswith("ease") else n.split("_", maxsplit=1)[0]

    def rule(partners: list[str], grid: tuple[float, ...]) -> tuple[str | None, float]:
        if not partners:
            return None, 0.0
        tried = [((None, 0.0), table[partners[0]][0][0][0], table[partners[0]][2][0])]
        for w in grid:
            i = WEIGHTS.index(w)
            tried += [((p, w), table[p][0][i][0], table[p][2][i]) for p in partners]
        best = max(range(len(tried)), key=lambda i: tried[i][1])
        for label, s, per in tried:
            diff = tried[best][2] - per
            if s >= tried[0][1] and diff.mean() <= diff.std(ddof=1) / np.sqrt(len(diff)):
                return label
        return tried[best][0]

    others = [p for p in table if family(p) != family(chosen)]
    current = others[:1]  # the best alone (table is ordered by validation alone)
    for label, pick in (
        ("current", rule(current, COARSE)),
        ("by blend", rule(others, COARSE)),
        ("current, fine", rule(current, WEIGHTS[1:])),
        ("by blend, fine", rule(others, WEIGHTS[1:])),
        ("any, by blend", rule(list(table), COARSE)),
    ):
        p, w = pick
        v, t = (
            alone[chosen]
            if p is None
            else (table[p][0][WEIGHTS.index(w)][0], table[p][1][WEIGHTS.index(w)][0])
        )
        print(f"rule {label:<16} -> {p} {w:g}: validation {v:.4f} test {t:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("cache", type=Path, help="folder for the fits (reused when present)")
    args = parser.parse_args()
    fit_all(args.dataset, args.cache)
    blend(args.cache)


if __name__ == "__main__":
    main()
