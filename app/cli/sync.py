"""The `bookbridge sync` subcommand: arguments and the run, on top of SyncClient."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("app.sync")


HELP = "push a JSONL or CSV file to the ingestion mutations in idempotent batches"
DESCRIPTION = (
    "Stream FILE (.jsonl or .csv, optionally .gz) to bookbridge in gzipped, "
    "idempotent batches; failed batches and rejected records go to a dead-letter file."
)


def configure(sync: argparse.ArgumentParser) -> None:
    """The arguments of `bookbridge sync`, on the parser `app.cli.main` made for it."""
    from app.sync.entities import ALIASES, ENTITIES

    sync.add_argument("file", nargs="?", type=Path, help="input file (.jsonl, .csv, .gz)")
    sync.add_argument("--url", required=True, help="server URL, e.g. http://127.0.0.1:8000")
    sync.add_argument(
        "--entity",
        choices=[*ENTITIES, *ALIASES],
        metavar="ENTITY",
        help="what FILE holds: " + ", ".join([*ENTITIES, *ALIASES]),
    )
    sync.add_argument("--batch-size", type=int, default=1000, help="records per batch, 500-10000")
    sync.add_argument(
        "--token", default=os.environ.get("BOOKBRIDGE_TOKEN"), help="API key (or $BOOKBRIDGE_TOKEN)"
    )
    sync.add_argument(
        "--dead-letter", type=Path, help="dead-letter JSONL (default: FILE.dead-letters.jsonl)"
    )
    sync.add_argument(
        "--retry-dead-letters",
        action="store_true",
        help="resend what the dead-letter file holds instead of reading FILE",
    )
    sync.add_argument(
        "--resume", action="store_true", help="skip batches acknowledged by an earlier run"
    )
    sync.add_argument("--max-attempts", type=int, default=6, help="tries per batch (default 6)")
    sync.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    sync.add_argument("--no-progress", action="store_true", help="no progress bar")
    sync.set_defaults(func=cmd_sync)


def cmd_sync(args: argparse.Namespace) -> int:
    from app.sync.client import SyncClient
    from app.sync.reader import file_format
    from app.sync.state import dead_letter_path

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    if args.retry_dead_letters:
        if args.dead_letter is None and args.file is None:
            return _usage("--retry-dead-letters needs --dead-letter FILE or the input FILE")
        dead = args.dead_letter or dead_letter_path(args.file)
    else:
        if args.file is None or args.entity is None:
            return _usage("FILE and --entity are required")
        if not args.file.is_file():
            what = "is a directory" if args.file.is_dir() else "no such file"
            return _usage(f"{args.file}: {what}; give a .jsonl or .csv file (optionally .gz)")
        try:
            file_format(args.file)
        except ValueError as exc:
            return _usage(str(exc))
    try:
        client = SyncClient(
            args.url,
            token=args.token,
            batch_size=args.batch_size,
            max_attempts=args.max_attempts,
            timeout=args.timeout,
            progress=False if args.no_progress else None,
        )
    except ValueError as exc:
        return _usage(str(exc))
    source = dead if args.retry_dead_letters else args.file
    try:
        with client:
            if args.retry_dead_letters:
                summary = client.retry_dead_letters(dead)
            else:
                summary = client.sync_file(
                    args.entity, args.file, resume=args.resume, dead_letter=args.dead_letter
                )
    except (OSError, UnicodeDecodeError, EOFError) as exc:  # unreadable, not UTF-8, cut-off gzip
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        print(
            f"bookbridge sync: cannot read {source}: {reason}\n"
            "  give a readable UTF-8 .jsonl or .csv file (gzip it whole as .gz)",
            file=sys.stderr,
        )
        return 1
    print("bookbridge sync:", file=sys.stderr)
    print(summary.report(), file=sys.stderr)
    return 1 if summary.failed_batches else 0


def _usage(message: str) -> int:
    print(f"bookbridge sync: {message}", file=sys.stderr)
    return 2
