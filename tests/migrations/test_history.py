"""The migration history has one head, and `bookbridge migrate --status` says where a database
stands (current and pending revisions) without changing it."""

from __future__ import annotations

import pytest

from app.cli.main import build_parser
from app.db.migrate import pending_revisions, scripts, status


def test_the_history_has_exactly_one_head() -> None:
    # Two heads mean two branches nobody merged: "head" would refuse to upgrade.
    heads = scripts().get_heads()
    assert len(heads) == 1, f"unmerged migration heads {heads}: add a merge revision"


def test_every_revision_leads_to_the_head() -> None:
    script = scripts()
    (head,) = script.get_heads()
    on_the_way = {r.revision for r in script.iterate_revisions(head, "base")}
    assert on_the_way == {r.revision for r in script.walk_revisions()}


def test_pending_revisions_are_listed_oldest_first() -> None:
    everything = [rev for rev, _ in pending_revisions(())]
    assert everything[:6] == ["0001", "0002", "0003", "0004", "0005", "0005b"]
    assert everything[-1] == scripts().get_current_head()
    assert pending_revisions(("0003",))[0] == ("0004", "api keys and trusted documents")
    # a database migrated to the two old heads has the merge and what came after it left
    assert [rev for rev, _ in pending_revisions(("0004", "0005"))] == ["0005b", "0006", "0007"]
    assert pending_revisions(tuple(scripts().get_heads())) == ()


def test_status_of_a_migrated_database(database_url: str) -> None:
    state = status(database_url)
    assert state.current == state.heads and state.pending == ()
    assert state.lines()[-1] == "pending: none (up to date)"


def test_migrate_status_command_changes_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    args = build_parser().parse_args(["migrate", "--status"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"current: {scripts().get_current_head()}" in out
    assert "pending: none (up to date)" in out
