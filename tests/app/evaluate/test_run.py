"""`bookbridge evaluate` on a tiny generated goodbooks-format data set (with and without tags)."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

from app.evaluate.dataset import split
from app.evaluate.run import evaluate
from app.reco import selection
from app.runtime.services import Services

FIELDS = (
    "strategy",
    "ndcg_at_10",
    "recall_at_10",
    "hit_rate_at_10",
    "coverage_at_10",
    "latency_p50_ms",
    "latency_p99_ms",
)
NAMES = {
    "TOPIC",
    "COLLABORATIVE",
    "CONTENT",
    "TRENDING",
    "HYBRID",
    "POPULARITY_BASELINE",
    "ITEMKNN_BASELINE",
    "RP3BETA_BASELINE",
    "EASE_BASELINE",
}


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def make_dataset(root: Path, tags: bool = True, books: int = 40, users: int = 60) -> Path:
    """Four clusters of books; each user reads mostly inside one cluster."""
    rng = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    _write(
        root / "books.csv",
        ["book_id", "goodreads_book_id", "authors", "title"],
        [
            [b, 1000 + b, f"Author {b % 7}", f"Book {b} of cluster {b % 4}"]
            for b in range(1, books + 1)
        ],
    )
    if tags:
        names = [
            "to-read",
            "fantasy",
            "history",
            "science",
            "poetry",
            "dragons",
            "wars",
            "physics",
            "sonnets",
        ]
        _write(root / "tags.csv", ["tag_id", "tag_name"], [[i, n] for i, n in enumerate(names)])
        _write(
            root / "book_tags.csv",
            ["goodreads_book_id", "tag_id", "count"],
            [
                [1000 + b, t, c]
                for b in range(1, books + 1)
                for t, c in ((0, 500), (1 + b % 4, 100 + b), (5 + b % 4, 40), (1 + (b + 1) % 4, -1))
            ],
        )
    ratings, to_read = [], []
    for u in range(1, users + 1):
        cluster = u % 4
        mine = [b for b in range(1, books + 1) if b % 4 == cluster]
        picks = rng.sample(mine, 6) + rng.sample(range(1, books + 1), 2)
        for i, b in enumerate(dict.fromkeys(picks)):
            (ratings if i % 2 == 0 else to_read).append([u, b, 4] if i % 2 == 0 else [u, b])
    _write(root / "ratings.csv", ["user_id", "book_id", "rating"], ratings)
    _write(root / "to_read.csv", ["user_id", "book_id"], to_read)
    return root


def test_split_follows_the_protocol(tmp_path: Path) -> None:
    data = split(make_dataset(tmp_path / "d"))
    for user, held in data.test.items():
        total = len(held) + len(data.train[user])
        assert total >= 5
        assert len(held) == max(1, round(0.2 * total))
        assert not held & set(data.train[user])
    assert split(tmp_path / "d").test == data.test  # seeded: the same split every time


async def test_evaluate_reports_every_strategy_and_baseline(
    services: Services, tmp_path: Path
) -> None:
    report = await evaluate(services, make_dataset(tmp_path / "d"), latency_samples=5)
    rows = {r["strategy"]: r for r in report["results"]}
    assert set(rows) == NAMES
    for r in rows.values():
        assert set(r) == set(FIELDS)
        assert 0 <= r["ndcg_at_10"] <= 1 and 0 <= r["coverage_at_10"] <= 1
    # the data is clustered: co-engagement beats popularity by a margin
    assert rows["COLLABORATIVE"]["ndcg_at_10"] > rows["POPULARITY_BASELINE"]["ndcg_at_10"]
    assert rows["HYBRID"]["ndcg_at_10"] > rows["POPULARITY_BASELINE"]["ndcg_at_10"]
    assert report["dataset"]["evaluated_users"] == 60
    # the model and weights were chosen on the training events alone: what the lists job
    # validated on is exactly the training pairs, none of the held-out test pairs
    data = split(tmp_path / "d")
    async with services.engine.connect() as conn:
        seen = await selection.engagement(conn)
    pairs = {(seen.users[u], seen.books[b]) for u, b in zip(*seen.x.nonzero(), strict=True)}
    assert pairs == {(f"u-{u}", b) for u, books in data.train.items() for b in books}
    assert not pairs & {(f"u-{u}", b) for u, books in data.test.items() for b in books}
    chosen = report["selection"]
    assert chosen["model"] in {"itemknn", "rp3beta", "ease_local", "ease"}


async def test_evaluate_without_tags(services: Services, tmp_path: Path) -> None:
    report = await evaluate(services, make_dataset(tmp_path / "d", tags=False), latency_samples=3)
    rows = {r["strategy"]: r for r in report["results"]}
    assert set(rows) == NAMES
    assert report["dataset"]["topics"] == 0
    assert rows["HYBRID"]["ndcg_at_10"] > 0


def test_cli_writes_the_json_shape(services: Services, database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    cmd = [
        sys.executable,
        "-m",
        "app.cli.main",
        "evaluate",
        "--dataset",
        str(make_dataset(tmp_path / "d", books=24, users=20)),
        "--json",
        str(out),
        "--database-url",
        database_url,
        "--sample",
        "10",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "HYBRID" in done.stdout and "ndcg@10" in done.stdout
    assert "collab model:" in done.stdout and "HYBRID weights:" in done.stdout
    body = json.loads(out.read_text())
    assert [set(r) for r in body["results"]] == [set(FIELDS)] * len(NAMES)
    assert {r["strategy"] for r in body["results"]} == NAMES
    assert body["dataset"]["evaluated_users"] == 10
