"""Neighbour lists: item-item co-engagement (cosine) and content (TF-IDF) similarity, top-k."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.reco.models import kth_largest, top_k_rows

log = logging.getLogger("bookbridge.reco.neighbours")
CHUNK = 1024
# The swap waits at most this long for `book_neighbours`' lock (a long query holding it would
# otherwise keep the swap waiting, and every read queued behind the swap), then tries again.
SWAP_LOCK_TIMEOUT_MS = 2000
SWAP_ATTEMPTS = 5
LOCK_NOT_AVAILABLE = "55P03"
BLOCK_CELLS = 2_000_000
COMMON_TERM_SHARE = 0.01  # a term in more than this share of documents is "common" ...
MAX_COMMON_TERMS = 256  # ... up to this many of the most frequent
DENSE_ABOVE = 0.2  # a block denser than this is ranked densely (argpartition)
EXACT_UP_TO = 20_000  # content lists: up to this many books every pair is compared (exact) ...
TOP_TERMS = 30  # ... above it a book's candidates come from its this many best terms' postings
POSTING_CAP = 32  # ... each cut to the this many books the term weighs most in
PRESELECT = 400  # ... of which the this many best by their top terms' part are scored exactly
PAIR_CHUNK = 65_536  # candidate pairs whose common-term part is summed at once
COPY_SLICE = 65_536  # list rows turned into tuples at once while they are written
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


Triples = list[tuple[int, int, float]]  # (row item, neighbour item, score)
# The same lists as three arrays (row items, neighbour items, scores): millions of rows at the
# large scale, where a Python tuple per row was a gigabyte and seconds of the lists job.
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def triples(arrays: Arrays) -> Triples:
    rows, cols, vals = arrays
    return list(zip(rows.tolist(), cols.tolist(), vals.tolist(), strict=True))


def _joined(parts: list[Arrays]) -> Arrays:
    if not parts:
        return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    return (
        np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[2] for p in parts]).astype(np.float64, copy=False),
    )


@dataclass(frozen=True, slots=True)
class Lists:
    """Neighbour lists of books named by `ids` (an object array of book ids): the book
    `ids[rows[i]]`, its neighbour `ids[cols[i]]` and their score. Ids are looked up per
    slice while the rows are written, so no list of millions of tuples is ever held."""

    ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray

    @classmethod
    def of(cls, ids: Sequence[str], arrays: Arrays) -> Lists:
        named = np.empty(len(ids), dtype=object)
        named[:] = list(ids)
        return cls(named, *arrays)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[str, str, float]]:
        for lo in range(0, len(self.rows), COPY_SLICE):
            yield from self._slice(lo, lo + COPY_SLICE)

    def _slice(self, lo: int, hi: int) -> Iterator[tuple[str, str, float]]:
        return zip(
            self.ids[self.rows[lo:hi]].tolist(),
            self.ids[self.cols[lo:hi]].tolist(),
            self.scores[lo:hi].tolist(),
            strict=True,
        )

    def of_books(self, books: set[str]) -> list[tuple[str, str, float]]:
        """The rows of the given books, as tuples (a few of millions: for HYBRID's tuning)."""
        return list(self._of_books(books))

    def _of_books(self, books: set[str]) -> Lists:
        keep = np.fromiter((b in books for b in self.ids), dtype=bool, count=len(self.ids))
        mask = keep[self.rows]
        return Lists(self.ids, self.rows[mask], self.cols[mask], self.scores[mask])

    def indexed(self, books: set[str], index: dict[str, int]) -> Arrays:
        """The rows of the given books as positions in `index` (book -> position), books it
        lacks added to it as `of_books`' rows name them (row book, then neighbour, row by
        row): what setting each of its tuples' books in turn gives, with a Python step per
        book instead of per row (millions at 100,000 books, for HYBRID's tuning)."""
        mine = self._of_books(books)
        where = np.fromiter((index.get(b, -1) for b in self.ids), np.int64, count=len(self.ids))
        named = np.column_stack([mine.rows, mine.cols]).ravel()  # a, b, a, b, ...
        new = named[where[named] < 0]
        unique, first = np.unique(new, return_index=True)
        for book in unique[np.argsort(first, kind="stable")].tolist():
            where[book] = index[self.ids[book]] = len(index)
        return where[mine.rows], where[mine.cols], mine.scores


Rows = Sequence[tuple[str, str, float]] | Lists


def top_k_arrays(sim_rows: np.ndarray, k: int, offset: int) -> Arrays:
    """The k best positive columns of each row of a dense block (the diagonal is skipped)."""
    n = sim_rows.shape[1]
    kk = min(k, n - 1)
    if kk <= 0:
        return _joined([])
    rows = np.arange(sim_rows.shape[0])
    sim_rows[rows, offset + rows] = 0.0
    idx = np.argpartition(sim_rows, n - kk, axis=1)[:, n - kk :]  # the kk largest
    vals = np.take_along_axis(sim_rows, idx, axis=1)
    keep = vals > 0
    picked = np.broadcast_to(rows[:, None], idx.shape)[keep] + offset
    return picked, idx[keep], vals[keep]


def top_k(sim_rows: np.ndarray, k: int, offset: int) -> Triples:
    return triples(top_k_arrays(sim_rows, k, offset))


def sparse_top_k_arrays(block: sp.csr_matrix, k: int, offset: int) -> Arrays:
    """`top_k` of a sparse block without densifying it: co-engagement rows of a large catalog
    are mostly empty, and a dense 1,024 x 100,000 block per chunk was most of the worker's
    list refresh at the large scale. Ties go to the lower column; a block dense enough to be
    ranked densely (`DENSE_ABOVE`) breaks ties as `np.argpartition` does, which is arbitrary
    but the same on every run and every replica."""
    if block.nnz > DENSE_ABOVE * block.shape[0] * block.shape[1]:
        return top_k_arrays(block.toarray().astype(np.float32, copy=False), k, offset)
    rows, cols, vals = top_k_rows(block, k, offset)
    return rows, cols, vals


def sparse_top_k(block: sp.csr_matrix, k: int, offset: int) -> Triples:
    return triples(sparse_top_k_arrays(block, k, offset))


def _rows_per_block(columns: int) -> int:
    """Rows of a similarity block: at most BLOCK_CELLS cells, so the temporaries of a dense
    ranking stay small enough for the allocator to reuse (large ones are fresh pages every
    block: the kernel's time, not ours)."""
    return max(8, min(CHUNK, BLOCK_CELLS // max(columns, 1)))


def cosine_neighbours(matrix: sp.csr_matrix, k: int, alpha: float = 0.5) -> Triples:
    """Item-item neighbours of a users x items 0/1 matrix: co-count / (n_i^a x n_j^(1-a))."""
    items = matrix.shape[1]
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
    counts[counts == 0] = 1.0
    left, right = np.power(counts, alpha), np.power(counts, 1 - alpha)
    xt = matrix.T.tocsr().astype(np.float32)
    x = matrix.tocsc().astype(np.float32)
    out: list[Arrays] = []
    for start in range(0, items, CHUNK):
        stop = min(start + CHUNK, items)
        co = (xt[start:stop] @ x).tocsr()
        co.data = co.data.astype(np.float64)
        rows = np.repeat(np.arange(stop - start), np.diff(co.indptr))
        co.data /= left[start + rows] * right[co.indices]
        out.append(sparse_top_k_arrays(co, k, start))
    return triples(_joined(out))


def ease_neighbours(matrix: sp.csr_matrix, k: int, lam: float) -> Triples:
    """EASE (Steck 2019): B = I - P / diag(P), P = (X'X + lam I)^-1; keeps each item's k best
    positive weights. Dense in the number of items: used up to `ease_max_items`."""
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    del p, gram
    out = [
        top_k_arrays(b[start : start + CHUNK], k, start) for start in range(0, b.shape[0], CHUNK)
    ]
    return triples(_joined(out))


def tokens(
    title: str, description: str | None, tags: Sequence[str], topics: Sequence[str]
) -> list[str]:
    words = _TOKEN.findall(" ".join([title, description or "", *tags, *topics]).lower())
    return [w for w in words if w not in STOPWORDS and len(w) > 1] + [
        "tag:" + t.lower() for t in [*tags, *topics]
    ]


def tfidf_neighbours(docs: Sequence[list[str]], k: int, exact_up_to: int = EXACT_UP_TO) -> Triples:
    """`tfidf_lists` as (row, neighbour, score) tuples."""
    return triples(tfidf_lists(docs, k, exact_up_to))


def tfidf_lists(docs: Sequence[list[str]], k: int, exact_up_to: int = EXACT_UP_TO) -> Arrays:
    """Cosine neighbours over sublinear TF-IDF vectors (rows with no terms get none): every
    pair up to `exact_up_to` documents, candidate pairs only above it (`_candidate_top_k`)."""
    vocab: dict[str, int] = {}
    # one pass over every token (terms numbered by first occurrence), counted by scipy
    terms = np.fromiter(
        (vocab.setdefault(w, len(vocab)) for doc in docs for w in doc), dtype=np.int64
    )
    if not vocab:
        return _joined([])
    rows = np.repeat(np.arange(len(docs)), [len(doc) for doc in docs])
    m = sp.csr_matrix(
        (np.ones(len(terms)), (rows, terms)), shape=(len(docs), len(vocab)), dtype=np.float64
    )
    m.sum_duplicates()
    m.data = 1.0 + np.log(m.data)
    df = np.bincount(m.indices, minlength=len(vocab))
    m = m @ sp.diags(np.log((1 + len(docs)) / (1 + df)) + 1.0)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    m = (sp.diags(1.0 / norms) @ m).tocsr()
    if len(docs) <= exact_up_to:
        return _cosine_top_k(m, df, k)
    return _candidate_top_k(m, df, k)


def _common_terms(m: sp.csr_matrix, df: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """The columns of the most frequent terms (over `COMMON_TERM_SHARE` of the documents, up
    to `MAX_COMMON_TERMS`) and M without them."""
    n = m.shape[0]
    common = np.flatnonzero(df > COMMON_TERM_SHARE * n)
    common = common[np.argsort(-df[common], kind="stable")[:MAX_COMMON_TERMS]]
    keep = np.ones(m.shape[1], dtype=bool)
    keep[common] = False
    return m[:, np.flatnonzero(keep)].tocsr(), common


def _cosine_top_k(m: sp.csr_matrix, df: np.ndarray, k: int) -> Arrays:
    """Top-k of M M' (rows L2-normalised), exactly, in row blocks. The few terms that most
    documents share (tags such as 'fiction') make the sparse product nearly dense and cost it
    the square of their document counts; their part of every score is one small dense BLAS
    product instead (M = rare terms + common terms, M M' = R R' + C C')."""
    n = m.shape[0]
    rare, common = _common_terms(m, df)
    dense = m[:, common].toarray().astype(np.float32) if len(common) else None
    rare_t = rare.T.tocsr()
    out: list[Arrays] = []
    step = _rows_per_block(n)
    for start in range(0, n, step):
        block = (rare[start : start + step] @ rare_t).tocsr()
        if dense is None:
            out.append(sparse_top_k_arrays(block, k, start))
            continue
        scores = dense[start : start + step] @ dense.T
        scores += block.toarray().astype(np.float32, copy=False)
        out.append(top_k_arrays(scores, k, start))
    return _joined(out)


def _candidate_top_k(
    m: sp.csr_matrix,
    df: np.ndarray,
    k: int,
    terms: int = TOP_TERMS,
    cap: int = POSTING_CAP,
    preselect: int | None = None,
) -> Arrays:
    """Top-k of M M' over candidate pairs only, so that time grows with books x candidates
    rather than books^2. Candidates come from an inverted index of each book's `terms`
    highest-weighted terms (its rarest, by IDF) whose posting lists are cut to the `cap` books
    the term weighs most in: a book's candidates are the books in the postings of its own top
    terms, at most `terms` x `cap`. Of those, the `preselect` with the largest part of the
    score over those terms (the product of the top-term rows and the postings, which the
    candidate search computes anyway) are scored exactly: a candidate's score is its exact
    cosine (the dot product of the two rows, over every term). Missed: pairs sharing none of
    the first's top terms in the kept postings (they share only frequent, low-IDF terms), and
    pairs whose shared top terms weigh too little to be among the `preselect`."""
    n = m.shape[0]
    preselect = PRESELECT if preselect is None else preselect
    top = _row_top(m, terms)  # the book's top terms with their weights
    cols = top.tocsc()
    keep_rows, keep_cols, keep_vals = [], [], []
    for j in np.flatnonzero(np.diff(cols.indptr) > 0):
        lo, hi = cols.indptr[j], cols.indptr[j + 1]
        best = np.argsort(-cols.data[lo:hi], kind="stable")[:cap]
        keep_rows.append(cols.indices[lo:hi][best])
        keep_cols.append(np.full(len(best), j))
        keep_vals.append(cols.data[lo:hi][best])
    postings = sp.csr_matrix(
        (
            np.concatenate(keep_vals).astype(np.float32),
            (np.concatenate(keep_cols), np.concatenate(keep_rows)),
        ),
        shape=(m.shape[1], n),
    )
    top32 = top.astype(np.float32)
    m32 = m.astype(np.float32)
    out: list[Arrays] = []
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        partial = (top32[start:stop] @ postings).tocsr()
        partial.sum_duplicates()
        rows = np.repeat(np.arange(stop - start), np.diff(partial.indptr))
        other = partial.indices != rows + start  # not the book itself
        rows, picked, part = rows[other], partial.indices[other], partial.data[other]
        # the best `preselect` by that part, ties at the last one kept (no order needed)
        near = part >= kth_largest(rows, part, preselect, stop - start)[rows]
        rows, picked = rows[near] + start, picked[near]
        data = np.empty(len(rows), dtype=np.float64)
        for lo in range(0, len(rows), PAIR_CHUNK):
            hi = min(lo + PAIR_CHUNK, len(rows))
            pair = m32[rows[lo:hi]].multiply(m32[picked[lo:hi]])
            data[lo:hi] = np.asarray(pair.sum(axis=1)).ravel()
        block = sp.csr_matrix((data, (rows - start, picked)), shape=(stop - start, n))
        out.append(sparse_top_k_arrays(block, k, start))
    return _joined(out)


def _row_top(m: sp.csr_matrix, terms: int) -> sp.csr_matrix:
    """Each row's `terms` largest entries (ties to the lower column)."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    rows, cols, vals = rows[order], m.indices[order], m.data[order]
    rank = np.arange(len(rows)) - m.indptr[rows]
    keep = rank < terms
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=m.shape)


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


async def compute_content(conn: AsyncConnection, k: int) -> Lists:
    rows = (await conn.execute(_CONTENT)).all()
    docs = [tokens(r.title, r.description, r.tags or [], r.topics) for r in rows]
    ids = [r.id for r in rows]
    del rows
    return Lists.of(ids, tfidf_lists(docs, k))


NEIGHBOURS_TABLE = "book_neighbours"
_PLAIN_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")
_PARTITION_OF = text(
    """
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = CAST(:parent AS regclass)
      AND pg_get_expr(c.relpartbound, c.oid) = :bound
    """
)


def partition_name(kind: str) -> str:
    """The partition of a kind's lists: `book_neighbours_<kind>`, or a hash of the kind when it
    is not a plain lower-case name (any text is a valid kind; not every text an identifier)."""
    if _PLAIN_KIND.fullmatch(kind):
        return f"{NEIGHBOURS_TABLE}_{kind}"
    return f"{NEIGHBOURS_TABLE}_k" + hashlib.sha256(kind.encode()).hexdigest()[:16]


def _literal(value: str) -> str:
    """A SQL string literal (DDL takes no bind parameters)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Staged:
    """A kind's new lists in a table of their own, keyed and analysed, not yet attached."""

    kind: str
    table: str
    rows: int
    copy_seconds: float
    key_seconds: float


async def stage_neighbours(conn: AsyncConnection, kind: str, rows: Rows) -> Staged:
    """COPY a kind's new lists into a fresh table without indexes, then build its primary key
    (one sorted build, far cheaper than checking each row against an index, let alone against
    the dead rows a DELETE leaves) and its statistics. The table carries the partition's
    constraint as a CHECK, so attaching it scans nothing. Nothing readers see changes until
    `swap_neighbours`; a bad row fails here and the transaction leaves the old lists as they
    were."""
    table = partition_name(kind) + "_next"
    mark = time.perf_counter()
    await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))  # a crashed run's, if committed
    await conn.execute(text(f"CREATE TABLE {table} (LIKE {NEIGHBOURS_TABLE})"))
    await conn.execute(
        text(
            f"ALTER TABLE {table} ADD CONSTRAINT kind_of_partition CHECK (kind = {_literal(kind)})"
        )
    )
    if rows:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            table,
            records=_records(kind, rows),
            columns=["kind", "book_id", "neighbour_id", "score"],
        )
    copied = time.perf_counter()
    await conn.execute(
        text(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (kind, book_id, neighbour_id)"
        )
    )
    await conn.execute(text(f"ANALYZE {table}"))  # fresh statistics: hash joins, not sorts
    return Staged(kind, table, len(rows), copied - mark, time.perf_counter() - copied)


async def swap_neighbours(
    conn: AsyncConnection,
    staged: Sequence[Staged],
    lock_timeout_ms: int = SWAP_LOCK_TIMEOUT_MS,
    attempts: int = SWAP_ATTEMPTS,
) -> None:
    """Put staged lists in place of their kinds' partitions: DETACH and DROP the old one,
    ATTACH the new one (a kind's first write just attaches). Metadata changes only, so the
    transaction's tail is short; DETACH locks the parent table until commit, so readers wait
    that long and then see the new lists, never an empty kind. Call it last in the
    transaction, after the work that takes time.

    The swap waits at most `lock_timeout_ms` for the table's lock: a long query that holds it
    would otherwise keep the swap waiting, and every reader queued behind the swap. It then
    rolls back to a savepoint (the staged tables stay), waits and tries again, `attempts`
    times in all, and raises the database's lock error after the last."""
    for attempt in range(1, attempts + 1):
        savepoint = await conn.begin_nested()
        try:
            await conn.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
            await _swap(conn, staged)
            await conn.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
        except DBAPIError as exc:
            await savepoint.rollback()
            busy = getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE
            if not busy or attempt == attempts:
                raise
            log.warning(
                "book_neighbours is locked by another session: swap attempt %d of %d "
                "gave up after %d ms, trying again",
                attempt,
                attempts,
                lock_timeout_ms,
            )
            await asyncio.sleep(min(1.0 * attempt, 5.0))
        else:
            await savepoint.commit()
            return


async def _swap(conn: AsyncConnection, staged: Sequence[Staged]) -> None:
    for s in staged:
        name = partition_name(s.kind)
        bound = f"FOR VALUES IN ({_literal(s.kind)})"
        params = {"parent": NEIGHBOURS_TABLE, "bound": bound}
        for (old,) in (await conn.execute(_PARTITION_OF, params)).all():
            await conn.execute(text(f"ALTER TABLE {NEIGHBOURS_TABLE} DETACH PARTITION {old}"))
            await conn.execute(text(f"DROP TABLE {old}"))
        await conn.execute(text(f"ALTER TABLE {s.table} RENAME TO {name}"))
        await conn.execute(
            text(f"ALTER TABLE {name} RENAME CONSTRAINT {s.table}_pkey TO {name}_pkey")
        )
        await conn.execute(text(f"ALTER TABLE {NEIGHBOURS_TABLE} ATTACH PARTITION {name} {bound}"))


def _records(kind: str, rows: Rows) -> Iterator[tuple[str, str, str, float]]:
    """COPY's records, made as they are sent: not a second list of millions."""
    return ((kind, a, b, s) for a, b, s in rows)


async def replace_neighbours(conn: AsyncConnection, kind: str, rows: Rows) -> int:
    """Rewrite one kind's lists: staged, then swapped in. Readers see the old lists until
    commit."""
    staged = await stage_neighbours(conn, kind, rows)
    await swap_neighbours(conn, [staged])
    return staged.rows
