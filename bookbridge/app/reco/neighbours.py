"""Neighbour lists: item-item co-engagement (cosine) and content (TF-IDF) similarity, top-k."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHUNK = 1024
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "he",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "to",
        "was",
        "were",
        "will",
        "with",
        "book",
        "books",
        "series",
        "vol",
        "volume",
        "edition",
        "novel",
    ]
)
_TOKEN = re.compile(r"[a-z0-9]+")


def top_k(sim_rows: np.ndarray, k: int, offset: int) -> list[tuple[int, int, float]]:
    """The k best positive columns of each row of a dense block (the diagonal is skipped)."""
    out: list[tuple[int, int, float]] = []
    n = sim_rows.shape[1]
    kk = min(k, n - 1)
    if kk <= 0:
        return out
    for r in range(sim_rows.shape[0]):
        sim_rows[r, offset + r] = 0.0
    idx = np.argpartition(-sim_rows, kk - 1, axis=1)[:, :kk]
    vals = np.take_along_axis(sim_rows, idx, axis=1)
    for r in range(sim_rows.shape[0]):
        for c, v in zip(idx[r], vals[r], strict=True):
            if v > 0:
                out.append((offset + r, int(c), float(v)))
    return out


def cosine_neighbours(
    matrix: sp.csr_matrix, k: int, alpha: float = 0.5
) -> list[tuple[int, int, float]]:
    """Item-item neighbours of a users x items 0/1 matrix: co-count / (n_i^a x n_j^(1-a))."""
    items = matrix.shape[1]
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
    counts[counts == 0] = 1.0
    xt = matrix.T.tocsr().astype(np.float32)
    x = matrix.tocsc().astype(np.float32)
    out: list[tuple[int, int, float]] = []
    for start in range(0, items, CHUNK):
        stop = min(start + CHUNK, items)
        co = (xt[start:stop] @ x).toarray().astype(np.float64)
        denom = np.power(counts[start:stop, None], alpha) * np.power(counts[None, :], 1 - alpha)
        out.extend(top_k(co / denom, k, start))
    return out


def ease_neighbours(matrix: sp.csr_matrix, k: int, lam: float) -> list[tuple[int, int, float]]:
    """EASE (Steck 2019): B = I - P / diag(P), P = (X'X + lam I)^-1; keeps each item's k best
    positive weights. Dense in the number of items: used up to `ease_max_items`."""
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    del p, gram
    out: list[tuple[int, int, float]] = []
    for start in range(0, b.shape[0], CHUNK):
        out.extend(top_k(b[start : start + CHUNK], k, start))
    return out


def tokens(
    title: str, description: str | None, tags: Sequence[str], topics: Sequence[str]
) -> list[str]:
    words = _TOKEN.findall(" ".join([title, description or "", *tags, *topics]).lower())
    return [w for w in words if w not in STOPWORDS and len(w) > 1] + [
        "tag:" + t.lower() for t in [*tags, *topics]
    ]


def tfidf_neighbours(docs: Sequence[list[str]], k: int) -> list[tuple[int, int, float]]:
    """Cosine neighbours over sublinear TF-IDF vectors (rows with no terms get none)."""
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        tf: dict[int, int] = {}
        for w in doc:
            j = vocab.setdefault(w, len(vocab))
            tf[j] = tf.get(j, 0) + 1
        for j, n in tf.items():
            rows.append(i)
            cols.append(j)
            vals.append(1.0 + math.log(n))
    if not vocab:
        return []
    m = sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)), dtype=np.float64)
    df = np.bincount(m.indices, minlength=len(vocab))
    m = m @ sp.diags(np.log((1 + len(docs)) / (1 + df)) + 1.0)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    m = sp.diags(1.0 / norms) @ m
    mt = m.T.tocsc()
    out: list[tuple[int, int, float]] = []
    for start in range(0, len(docs), CHUNK):
        block = (m[start : start + CHUNK] @ mt).toarray()
        out.extend(top_k(block, k, start))
    return out


_CO_ENGAGEMENT = text(
    """
    SELECT s.user_id, e.book_id FROM engagement_events e
    JOIN study_sets s ON s.id = e.study_set_id
    WHERE e.book_id IS NOT NULL GROUP BY s.user_id, e.book_id
    """
)
_CONTENT = text(
    """
    SELECT b.id, b.title, b.description, b.tags,
           coalesce(array_agg(t.label) FILTER (WHERE t.id IS NOT NULL), '{}') AS topics
    FROM books b
    LEFT JOIN topic_book_mappings m ON m.book_id = b.id
    LEFT JOIN topics t ON t.id = m.topic_id
    GROUP BY b.id ORDER BY b.id
    """
)


async def compute_collab(
    conn: AsyncConnection, k: int, lam: float, ease_max_items: int
) -> list[tuple[str, str, float]]:
    """Co-engagement neighbours per student: EASE when the catalog is small enough, else cosine."""
    pairs = (await conn.execute(_CO_ENGAGEMENT)).all()
    users: dict[str, int] = {}
    books: dict[str, int] = {}
    ui = [users.setdefault(u, len(users)) for u, _ in pairs]
    bi = [books.setdefault(b, len(books)) for _, b in pairs]
    if not pairs:
        return []
    matrix = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (ui, bi)), shape=(len(users), len(books))
    )
    names = list(books)
    if len(books) <= ease_max_items:
        triples = ease_neighbours(matrix, k, lam)
    else:
        triples = cosine_neighbours(matrix, k)
    return [(names[i], names[j], s) for i, j, s in triples]


async def compute_content(conn: AsyncConnection, k: int) -> list[tuple[str, str, float]]:
    rows = (await conn.execute(_CONTENT)).all()
    docs = [tokens(r.title, r.description, r.tags or [], r.topics) for r in rows]
    ids = [r.id for r in rows]
    return [(ids[i], ids[j], s) for i, j, s in tfidf_neighbours(docs, k)]


async def replace_neighbours(
    conn: AsyncConnection, kind: str, rows: list[tuple[str, str, float]]
) -> int:
    """Swap one kind's lists in a transaction: readers see the old lists until commit."""
    await conn.execute(text("DELETE FROM book_neighbours WHERE kind = :kind"), {"kind": kind})
    if rows:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            "book_neighbours",
            records=[(kind, a, b, s) for a, b, s in rows],
            columns=["kind", "book_id", "neighbour_id", "score"],
        )
    await conn.execute(text("ANALYZE book_neighbours"))  # fresh statistics: hash joins, not sorts
    return len(rows)
