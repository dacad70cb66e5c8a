"""Reads goodbooks-format CSVs, splits interactions (the issue's protocol), builds entity records.

What is synthetic is stated: one subject, publishers assigned by a hash of the authors, event
times drawn at random (seeded) over the last 180 days, one study set per user whose explicit
topics are the user's five strongest tags (TF-IDF over the user's training books).
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.reco.models import held_out

SEED = 42
HOLDOUT = 0.2
MIN_INTERACTIONS = 5
TAGS_PER_BOOK = 20
TOPICS_PER_USER = 5
PUBLISHERS = 20
SHELF_WORDS = (
    "to-read",
    "to-buy",
    "favorite",
    "favourite",
    "owned",
    "own-",
    "-own",
    "i-own",
    "my-",
    "kindle",
    "ebook",
    "e-book",
    "library",
    "wish",
    "default",
    "currently",
    "re-read",
    "reread",
    "dnf",
    "did-not-finish",
    "abandoned",
    "read-in",
    "read-20",
    "books-i",
    "audio",
    "shelf",
    "have",
    "borrowed",
    "tbr",
    "gave-up",
    "unfinished",
    "maybe",
    "someday",
    "bookclub",
    "book-club",
    "purchased",
    "bought",
    "read-",
    "-read",
    "series",
    "owned",
    "stars",
)
GENERIC = frozenset({"books", "book", "read", "reading", "general", "novels", "all-time", "-"})

Record = dict[str, Any]


def is_shelf_tag(name: str) -> bool:
    n = name.lower()
    return (
        n in GENERIC or any(w in n for w in SHELF_WORDS) or re.fullmatch(r"[-0-9]*", n) is not None
    )


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@dataclass(slots=True)
class Split:
    """Training pairs per user (file order) and held-out books per evaluated user."""

    train: dict[str, list[str]] = field(default_factory=dict)
    test: dict[str, set[str]] = field(default_factory=dict)
    rated: set[tuple[str, str]] = field(default_factory=set)


def split(directory: Path) -> Split:
    """Pairs of ratings.csv and to_read.csv together; users with >= 5 hold out 20% (seed 42)."""
    out = Split()
    seen: dict[str, dict[str, None]] = defaultdict(dict)
    for name in ("ratings.csv", "to_read.csv"):
        for row in _rows(directory / name):
            seen[row["user_id"]].setdefault(row["book_id"], None)
            if name == "ratings.csv":
                out.rated.add((row["user_id"], row["book_id"]))
    rng = random.Random(SEED)
    for user in sorted(seen, key=lambda u: (len(u), u)):
        books = list(seen[user])
        if len(books) >= MIN_INTERACTIONS:
            held = set(rng.sample(range(len(books)), max(1, round(HOLDOUT * len(books)))))
            out.test[user] = {b for i, b in enumerate(books) if i in held}
            out.train[user] = [b for i, b in enumerate(books) if i not in held]
        else:
            out.train[user] = books
    return out


@dataclass(slots=True)
class Catalog:
    books: list[Record]
    topics: list[Record]
    mappings: list[Record]
    book_topics: dict[str, dict[str, float]]  # book id -> topic id -> weight


def catalog(directory: Path) -> Catalog:
    """Books with their top non-shelf tags as topics; weight = tag count / the book's top count."""
    books = _rows(directory / "books.csv")
    tag_names = {r["tag_id"]: r["tag_name"] for r in _rows(directory / "tags.csv")}
    by_goodreads = {r["goodreads_book_id"]: r["book_id"] for r in books}
    counts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in _rows(directory / "book_tags.csv"):
        book = by_goodreads.get(r["goodreads_book_id"])
        name = tag_names.get(r["tag_id"])
        if book and name and not is_shelf_tag(name):
            counts[book].append((max(0, int(float(r["count"] or 0))), r["tag_id"]))
    book_topics: dict[str, dict[str, float]] = {}
    for book, tags in counts.items():
        top = sorted(tags, reverse=True)[:TAGS_PER_BOOK]
        best = top[0][0] if top and top[0][0] > 0 else 0
        if best:
            book_topics[book] = {f"tag-{t}": round(c / best, 4) for c, t in top if c > 0}
    used = sorted({t for ts in book_topics.values() for t in ts})
    updated = datetime(2024, 1, 1, tzinfo=UTC).isoformat()
    records = []
    for r in books:
        names = [tag_names[t[4:]] for t in book_topics.get(r["book_id"], {})][:10]
        publisher = int(hashlib.sha256(r.get("authors", "").encode()).hexdigest(), 16) % PUBLISHERS
        records.append(
            {
                "id": r["book_id"],
                "publisher_id": f"pub-{publisher}",
                "title": (r.get("title") or r.get("original_title") or r["book_id"])[:1000],
                "description": f"by {r['authors']}" if r.get("authors") else None,
                "tags": names,
                "updated_at": updated,
            }
        )
    topics = [
        {"id": t, "label": tag_names[t[4:]], "subject_id": "books", "grade_id": None} for t in used
    ]
    mappings = [
        {"topic_id": t, "book_id": b, "weight": w}
        for b, ts in book_topics.items()
        for t, w in ts.items()
    ]
    return Catalog(records, topics, mappings, book_topics)


def user_topics(
    train: list[str], book_topics: dict[str, dict[str, float]], idf: dict[str, float]
) -> list[str]:
    profile: dict[str, float] = defaultdict(float)
    for book in train:
        for topic, w in book_topics.get(book, {}).items():
            profile[topic] += w * idf.get(topic, 0.0)
    return [t for t, _ in sorted(profile.items(), key=lambda x: (-x[1], x[0]))[:TOPICS_PER_USER]]


def topic_idf(book_topics: dict[str, dict[str, float]]) -> dict[str, float]:
    df: Counter[str] = Counter(t for ts in book_topics.values() for t in ts)
    n = max(1, len(book_topics))
    return {t: math.log(n / (1 + c)) for t, c in df.items()}


def profile(user: str, books: list[str], known: set[str]) -> list[str]:
    """The training books a study set's topics are made from: all but those the lists job
    would hold out if it validated on this user (`held_out` of the ingested pairs, by id), so
    the validation split hides its held-out books from TOPIC too, as the test split does."""
    mine = list(dict.fromkeys(b for b in books if b in known))
    if len(mine) < MIN_INTERACTIONS:
        return books
    hidden = held_out(f"u-{user}", mine)
    return [b for b in books if b not in hidden]


def study_sets_and_events(
    data: Split, cat: Catalog, now: datetime
) -> tuple[list[Record], list[Record]]:
    """One study set per user (explicit topics); one training event per pair, never the held-out."""
    idf = topic_idf(cat.book_topics)
    rng = random.Random(SEED)
    sets, events = [], []
    created = (now - timedelta(days=365)).isoformat()
    known = {b["id"] for b in cat.books}
    for user, books in data.train.items():
        sets.append(
            {
                "id": f"ss-{user}",
                "user_id": f"u-{user}",
                "subject_id": "books",
                "title": "Reading list",
                "created_at": created,
                "topic_ids": user_topics(profile(user, books, known), cat.book_topics, idf),
            }
        )
        for book in books:
            if book not in known:
                continue
            at = now - timedelta(seconds=rng.uniform(3600, 180 * 86400))
            events.append(
                {
                    "id": f"ev-{user}-{book}",
                    "study_set_id": f"ss-{user}",
                    "event_type": "complete" if (user, book) in data.rated else "save",
                    "occurred_at": at.isoformat(),
                    "book_id": book,
                }
            )
    return sets, events
