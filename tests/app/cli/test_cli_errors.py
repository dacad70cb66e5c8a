"""`bookbridge` failures a person can fix are two lines saying what failed and what to do, with
exit code 1 (failure) or 2 (usage); --version; help text for every command and option."""

from __future__ import annotations

import asyncio
import logging
import re
import socket

import pytest

import app
from app.cli.main import build_parser, main
from app.core.settings import Settings
from app.runtime.services import Services
from tests.factories import catalog


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and output of `bookbridge ARGV` (log lines of the libraries left out)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # main() installs its own stderr handler
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse: --help, --version, usage errors
        code = int(exit_.code or 0)
    finally:
        root.handlers[:], root.level = handlers, level
    out = capsys.readouterr()
    lines = (out.out + out.err).splitlines(keepends=True)
    ours = [i for i, line in enumerate(lines) if line.startswith(("bookbridge ", "bbk_"))]
    return code, "".join(lines[ours[0] :] if ours and argv[-1:] != ["--help"] else lines)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


COMMANDS = [
    ["migrate"],
    ["demo"],
    ["serve", "--port", "1"],
    ["worker", "--once"],
    ["keys", "create", "--name", "n", "--scopes", "admin"],
    ["keys", "list"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_database_unreachable_is_two_lines(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:secret@127.0.0.1:{port}/nowhere")
    code, text = run(capsys, *argv)
    lines = text.strip().splitlines()
    assert code == 1, text
    assert len(lines) == 2, text
    assert f"cannot reach PostgreSQL at postgres@127.0.0.1:{port}/nowhere" in lines[0]
    assert lines[0].startswith(f"bookbridge {argv[0]}")
    assert "DATABASE_URL" in lines[1] and "secret" not in text
    assert "Traceback" not in text


def test_missing_database_and_unknown_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    assert settings.database_url
    missing = settings.database_url.rsplit("/", 1)[0] + "/bookbridge_no_such_db"
    monkeypatch.setenv("DATABASE_URL", missing)
    code, text = run(capsys, "migrate")
    assert code == 1 and len(text.strip().splitlines()) == 2, text
    assert 'database "bookbridge_no_such_db" does not exist' in text and "createdb" in text
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@no-such-host.invalid:5432/db")
    code, text = run(capsys, "migrate")
    assert code == 1 and "no-such-host.invalid:5432" in text and "unknown host" in text


def test_a_non_postgres_url_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u@h/db")
    code, text = run(capsys, "migrate")
    assert code == 2 and "must be a PostgreSQL URL" in text and "Traceback" not in text


async def test_keys_create_refuses_an_unknown_publisher(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    services: Services,
    settings: Settings,
) -> None:
    assert settings.database_url
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    await catalog(services, books=1, publishers=1)
    argv = ["keys", "create", "--name", "sync", "--scopes", "catalog:write", "--publisher"]
    code, text = await asyncio.to_thread(run, capsys, *argv, "nope")
    assert code == 2, text
    assert "no publisher 'nope'" in text and len(text.strip().splitlines()) == 2
    code, text = await asyncio.to_thread(run, capsys, *argv, "p0")
    assert code == 0 and text.startswith("bbk_"), text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(capsys, "--version")
    assert code == 0 and text.strip() == f"bookbridge {app.__version__}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(capsys)
    assert code == 2 and "usage: bookbridge" in text


def _commands(help_text: str) -> list[str]:
    """The subcommands a help text lists (`    name   what it does`); each must say what it does."""
    listed = re.findall(r"^ {4}([a-z][\w-]*)( {2,}\S.*|\n {6,}\S.*)?$", help_text, re.MULTILINE)
    assert all(what for _, what in listed), f"a subcommand without help: {listed}"
    return [name for name, _ in listed]


def _undocumented(help_text: str) -> list[str]:
    """Arguments of a help text's option/positional sections that have no help string."""
    entries: list[list[str]] = []
    body = help_text.split("\n\n", 1)[-1]  # not the usage block
    for line in body.splitlines():
        if re.match(r"^  \S", line):
            entries.append([line])
        elif re.match(r"^\s{3,}\S", line) and entries:
            entries[-1].append(line)
        elif not line.strip() or not line.startswith(" "):
            entries.append([])  # a section heading or blank line ends the entry
    return [
        entry[0].strip()
        for entry in entries
        if len(entry) == 1 and not re.search(r"\S\s{2,}\S", entry[0])
    ]


def test_every_command_and_option_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    width = {"COLUMNS": "100"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in width.items():
            mp.setenv(k, v)
        top = build_parser().format_help()
        commands = _commands(top)
        assert {"serve", "migrate", "demo", "keys", "sync", "worker"} <= set(commands)
        assert _undocumented(top) == []
        todo = [[c] for c in commands]
        checked = 0
        while todo:
            argv = todo.pop()
            code, text = run(capsys, *argv, "--help")
            assert code == 0, argv
            assert _undocumented(text) == [], (argv, text)
            todo.extend([*argv, sub] for sub in _commands(text))
            checked += 1
        assert checked >= 12
    for command in ("serve", "migrate", "demo"):  # these say what they do, not just usage
        code, text = run(capsys, command, "--help")
        assert len(text.split("\n\n")[1].strip()) > 40, text
