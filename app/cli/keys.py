"""`bookbridge keys ...` and `bookbridge documents ...`: manage API keys and trusted documents."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cli.errors import USAGE, CliError
from app.core.settings import Settings


def _run(work: Callable[[AsyncConnection], Awaitable[int]]) -> int:
    from app.db.engine import make_engine, resolve_database_url

    settings = Settings()
    url = resolve_database_url(settings)

    async def main() -> int:
        engine = make_engine(settings, url)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.auth import keys
    from app.db.catalog import publishers_by_ids

    async def work(conn: AsyncConnection) -> int:
        if args.publisher and not await publishers_by_ids(conn, [args.publisher]):
            raise CliError(
                f"no publisher {args.publisher!r} in the database\n"
                "  check the id (query `publishers`), or sync the publishers first",
                USAGE,
            )
        secret, info = await keys.create_key(conn, args.name, args.scopes, args.publisher)
        print(secret)
        bound = f", publisher {info.publisher_id}" if info.publisher_id else ""
        print(
            f"bookbridge: key {info.id} ({info.name}: {','.join(info.scopes)}{bound}); "
            "it is shown only this once",
            file=sys.stderr,
        )
        return 0

    try:
        return _run(work)
    except ValueError as exc:
        print(f"bookbridge keys create: {exc}", file=sys.stderr)
        return 2


def cmd_keys_list(args: argparse.Namespace) -> int:
    from app.auth import keys

    async def work(conn: AsyncConnection) -> int:
        for k in await keys.list_keys(conn, include_revoked=args.all):
            state = "live" if k.live else ("revoked" if k.revoked_at else "expired")
            expires = f" expires {k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else ""
            print(
                f"{k.id}  {state:<7} {k.name:<24} {','.join(k.scopes):<40} "
                f"{k.publisher_id or '-'}{expires}"
            )
        return 0

    return _run(work)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from app.auth import keys

    async def work(conn: AsyncConnection) -> int:
        grace = timedelta(hours=args.grace_hours) if args.grace_hours is not None else None
        try:
            secret, info = await keys.rotate_key(conn, args.key_id, grace=grace)
        except LookupError as exc:
            print(f"bookbridge keys rotate: {exc}", file=sys.stderr)
            return 1
        print(secret)
        until = f"for {args.grace_hours} h" if grace else "until you revoke it"
        print(f"bookbridge: new key {info.id}; {args.key_id} stays live {until}", file=sys.stderr)
        return 0

    return _run(work)


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from app.auth import keys

    async def work(conn: AsyncConnection) -> int:
        if not await keys.revoke_key(conn, args.key_id):
            print(f"bookbridge keys revoke: no live key {args.key_id}", file=sys.stderr)
            return 1
        print(f"bookbridge: key {args.key_id} revoked", file=sys.stderr)
        return 0

    return _run(work)


def cmd_documents_register(args: argparse.Namespace) -> int:
    """Each file is one document, registered exactly as clients will send it."""
    from graphql import build_schema as from_sdl
    from graphql import parse, validate

    from app.db import trusted_documents
    from graphql_schema.schema import build_schema

    schema = from_sdl(build_schema().as_str())  # the public SDL, as clients see the schema
    bodies: list[tuple[Path, str]] = []
    for name in args.files:
        path = Path(name)
        try:
            body = path.read_text()
            errors = validate(schema, parse(body))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"bookbridge documents register: {path}: {exc}", file=sys.stderr)
            return 2
        except GraphQLError as exc:
            errors = [exc]
        if errors:
            print(f"bookbridge documents register: {path}: {errors[0].message}", file=sys.stderr)
            return 2
        bodies.append((path, body))

    async def work(conn: AsyncConnection) -> int:
        for path, body in bodies:
            digest = await trusted_documents.register(conn, body, path.stem)
            print(f"sha256:{digest}  {path}")
        return 0

    return _run(work)


def cmd_documents_list(args: argparse.Namespace) -> int:
    from app.db import trusted_documents

    async def work(conn: AsyncConnection) -> int:
        for digest, name in await trusted_documents.list_documents(conn):
            print(f"sha256:{digest}  {name or '-'}")
        return 0

    return _run(work)


KEYS_HELP = "API keys: create, list, rotate, revoke"
DOCUMENTS_HELP = "trusted documents (persisted queries)"


def configure_keys(parser: argparse.ArgumentParser) -> None:
    """The `bookbridge keys` subcommands, on the parser `app.cli.main` made for it."""
    keys_p = parser.add_subparsers(dest="keys_command", required=True)
    create = keys_p.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. catalog:write")
    create.add_argument("--publisher", default=None, help="bind the key to this publisher id")
    create.set_defaults(func=cmd_keys_create)
    listing = keys_p.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_keys_list)
    rotate = keys_p.add_parser("rotate", help="a new key with the same grants; both stay live")
    rotate.add_argument("key_id", help="the id shown by `keys list`")
    rotate.add_argument("--grace-hours", type=float, default=None, help="expire the old key")
    rotate.set_defaults(func=cmd_keys_rotate)
    revoke = keys_p.add_parser("revoke", help="revoke a key now")
    revoke.add_argument("key_id", help="the id shown by `keys list`")
    revoke.set_defaults(func=cmd_keys_revoke)


def configure_documents(parser: argparse.ArgumentParser) -> None:
    """The `bookbridge documents` subcommands, on the parser `app.cli.main` made for it."""
    docs_sub = parser.add_subparsers(dest="documents_command", required=True)
    register = docs_sub.add_parser("register", help="register every operation of .graphql files")
    register.add_argument("files", nargs="+", help=".graphql files, one document each")
    register.set_defaults(func=cmd_documents_register)
    docs_sub.add_parser("list", help="list registered documents").set_defaults(
        func=cmd_documents_list
    )
