"""The evaluation's synthetic study sets (pure functions, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.evaluate.dataset import Catalog, Split, study_sets_and_events
from app.reco.models import held_out


def test_study_set_topics_never_come_from_books_the_lists_job_holds_out() -> None:
    """Each book has a topic of its own: a study set's topics must name none of the books the
    lists job hides from its candidates when it validates on that student (else TOPIC sees the
    validation answers and the weight grid over-weights it)."""
    books = [f"{i}" for i in range(40)]
    cat = Catalog([{"id": b} for b in books], [], [], {b: {f"tag-{b}": 1.0} for b in books})
    train = {f"{u}": books[u : u + 10] for u in range(30)}
    sets, events = study_sets_and_events(Split(train=train), cat, datetime.now(UTC))
    assert len(events) == 300
    for s in sets:
        user = s["user_id"]
        mine = train[user[2:]]
        hidden = held_out(user, mine)
        assert len(hidden) == 2
        assert s["topic_ids"]
        assert not {t[4:] for t in s["topic_ids"]} & hidden
