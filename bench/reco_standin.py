"""A stand-in for issue 16's held-back book data set (about 6,800 readers, 374,000
interactions, no tags), cut from a goodbooks-format folder: 6,800 readers drawn (seed 2026)
from those with 40 or more rated or to-read books, all their pairs, the books they touch;
books.csv, ratings.csv and to_read.csv only (no tags, so no topics).

    python -m bench.reco_standin /work/shared/data/goodbooks /tmp/quality/standin
    bookbridge evaluate --dataset /tmp/quality/standin --database-url ... --sample 10000

Goodbooks has 10,000 books (6,565 with a pair), so the stand-in has about 6,400, not 13,700,
and twice the held-back set's readers per book (53 against 27). The sparser stand-in matches
its readers per book and books per reader instead, at half its size: every reader with 50 or
more books (3,050 readers, 58 books each, about 28 readers per book):

    python -m bench.reco_standin /work/shared/data/goodbooks /tmp/quality/sparse \
      --readers 3050 --min-books 50

The output is derived from the data set: write it outside the repository.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

READERS = 6800
MIN_BOOKS = 40
SEED = 2026


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--readers", type=int, default=READERS, help="readers drawn")
    parser.add_argument("--min-books", type=int, default=MIN_BOOKS, help="books a reader needs")
    args = parser.parse_args()
    src, out = args.source, args.target
    out.mkdir(parents=True, exist_ok=True)
    books: dict[str, set[str]] = defaultdict(set)
    for name in ("ratings.csv", "to_read.csv"):
        with (src / name).open(newline="") as fh:
            for row in csv.DictReader(fh):
                books[row["user_id"]].add(row["book_id"])
    pool = sorted((u for u, b in books.items() if len(b) >= args.min_books), key=int)
    chosen = set(random.Random(SEED).sample(pool, min(args.readers, len(pool))))
    used: set[str] = set()
    for name in ("ratings.csv", "to_read.csv"):
        with (src / name).open(newline="") as fh, (out / name).open("w", newline="") as oh:
            reader = csv.DictReader(fh)
            writer = csv.DictWriter(oh, reader.fieldnames or [])
            writer.writeheader()
            for row in reader:
                if row["user_id"] in chosen:
                    writer.writerow(row)
                    used.add(row["book_id"])
    with (
        (src / "books.csv").open(newline="") as fh,
        (out / "books.csv").open("w", newline="") as oh,
    ):
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(oh, reader.fieldnames or [])
        writer.writeheader()
        writer.writerows(row for row in reader if row["book_id"] in used)
    pairs = sum(len(books[u]) for u in chosen)
    print(f"{len(chosen)} readers, {len(used)} books, {pairs} pairs -> {out}")


if __name__ == "__main__":
    main()
