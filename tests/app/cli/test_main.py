"""The `bookbridge` command line: every subcommand parses as the README and CONTRACT say."""

from __future__ import annotations

import pytest

from app.cli import keys, reco, sync
from app.cli.main import build_parser, cmd_demo, cmd_migrate, cmd_serve


@pytest.mark.parametrize(
    ("argv", "func", "expected"),
    [
        (["serve", "--port", "9000"], cmd_serve, {"host": "127.0.0.1", "port": 9000}),
        (["migrate"], cmd_migrate, {}),
        (["demo"], cmd_demo, {}),
        (
            ["keys", "create", "--name", "n", "--scopes", "catalog:write"],
            keys.cmd_keys_create,
            {"name": "n", "scopes": "catalog:write", "publisher": None},
        ),
        (["keys", "revoke", "k1"], keys.cmd_keys_revoke, {"key_id": "k1"}),
        (["documents", "register", "a.graphql"], keys.cmd_documents_register, {}),
        (["documents", "list"], keys.cmd_documents_list, {}),
        (
            ["sync", "books.jsonl", "--url", "http://127.0.0.1:8000", "--entity", "books"],
            sync.cmd_sync,
            {"entity": "books", "batch_size": 1000, "max_attempts": 6},
        ),
        (["worker", "--once"], reco.cmd_worker, {"once": True}),
        (["evaluate", "--dataset", "d"], reco.cmd_evaluate, {"keep": False}),
    ],
)
def test_every_subcommand_parses(
    argv: list[str], func: object, expected: dict[str, object]
) -> None:
    args = build_parser().parse_args(argv)
    assert args.func is func
    assert {k: getattr(args, k) for k in expected} == expected


def test_a_subcommand_without_its_arguments_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["keys"])
    assert exit_.value.code == 2 and "keys_command" in capsys.readouterr().err
