"""Lists that need no study set: books similar to a book, and trending books by subject/grade."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.reco import data
from app.reco.scoring import blend, neighbour_component, ranked, trending_component
from app.reco.strategies import COLLAB_PHRASE, CONTENT_PHRASE, Item, RecList

SIMILAR_WEIGHTS = {"COLLABORATIVE": 1.0, "CONTENT": 0.5}


async def similar_books(conn: AsyncConnection, book_id: str, first: int) -> RecList:
    """Co-engagement and content neighbours of one book, blended (each normalised to its max)."""
    titles = await data.book_titles(conn, [book_id])
    if book_id not in titles:
        return RecList([], "HYBRID")
    seeds = [(book_id, titles[book_id])]
    components = {
        "COLLABORATIVE": neighbour_component(
            seeds, await data.neighbours(conn, "collab", [book_id]), COLLAB_PHRASE
        ),
        "CONTENT": neighbour_component(
            seeds, await data.neighbours(conn, "content", [book_id]), CONTENT_PHRASE
        ),
    }
    rows = ranked(blend(components, SIMILAR_WEIGHTS), [book_id], first)
    return RecList([Item(b, s.score, s.reasons) for b, s in rows], "HYBRID")


async def trending_books(
    conn: AsyncConnection, subject_id: str | None, grade_id: str | None, first: int, size: int
) -> RecList:
    """The trend list of a subject/grade; a scope with no list yet falls back to a wider one."""
    chain = list(
        dict.fromkeys([(subject_id or "", grade_id or ""), (subject_id or "", ""), ("", "")])
    )
    lists, names = await data.trending(conn, chain, min(first, size))
    for i, (sub, grade) in enumerate(chain):
        if lists[(sub, grade)]:
            where = " and ".join(
                n for n in (names.get(f"s:{sub}", sub), names.get(f"g:{grade}", grade)) if n
            )
            phrase = f"in {where}" if where else "across all subjects"
            rows = ranked(trending_component(lists[(sub, grade)], phrase), (), first)
            prefix = ["Fallback: nothing trending yet for the requested scope"] if i else []
            return RecList([Item(b, s.score, prefix + s.reasons) for b, s in rows], "TRENDING")
    return RecList([], "TRENDING")
