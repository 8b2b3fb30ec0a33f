"""``vidare admin ...``: admin accounts and API tokens from the command line.

Not registered by ``vidare.cli`` yet (the lead wires it): ``commands_admin.add_commands(sub, common)``.

    vidare admin password USERNAME          # set (or create) an admin account; password from stdin
    vidare admin token create NAME [--user USER]   # prints a new API token once
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from vidare.config import Config
from vidare.store import open_store

__all__ = ["add_commands"]


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    admin = sub.add_parser("admin", help="web admin accounts and API tokens")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, parser_class=type(admin))

    pw = admin_sub.add_parser("password", help="set an admin account's password (read from stdin)")
    common(pw)
    pw.add_argument("username")
    pw.set_defaults(handler=_password)

    tok = admin_sub.add_parser("token", help="API tokens")
    tok_sub = tok.add_subparsers(dest="token_command", required=True, parser_class=type(admin))
    create = tok_sub.add_parser("create", help="create an API token and print it once")
    common(create)
    create.add_argument("name")
    create.add_argument("--user", default=None, help="a token acting as this user (default: admin)")
    create.set_defaults(handler=_token_create)


async def _open(config: Config) -> Any:
    from admin.tables import ensure_tables

    store = await open_store(config)
    await store.migrate()
    await ensure_tables(store.engine)
    return store


def _password(args: argparse.Namespace, config: Config) -> int:
    from vidare.cli import UsageError

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise UsageError("the password must be at least 8 characters")

    async def run() -> None:
        from datetime import UTC, datetime

        from admin.auth import hash_password
        from admin.tables import admin_accounts

        store = await _open(config)
        try:
            async with store.engine.begin() as conn:
                hashed = hash_password(password)
                done = await conn.execute(
                    admin_accounts.update()
                    .where(admin_accounts.c.username == args.username)
                    .values(password_hash=hashed)
                )
                if not done.rowcount:
                    await conn.execute(
                        admin_accounts.insert().values(
                            username=args.username, password_hash=hashed, created_at=datetime.now(UTC)
                        )
                    )
        finally:
            await store.close()

    asyncio.run(run())
    print(f"password of admin {args.username} set")
    return 0


def _token_create(args: argparse.Namespace, config: Config) -> int:
    from vidare.cli import UsageError

    async def run() -> str:
        from admin.auth import Auth
        from admin.repository import get_web_password_hash
        from policy.store.errors import NotFoundError

        store = await _open(config)
        try:
            auth = Auth(store.engine, lambda u: get_web_password_hash(store.engine, u))
            if args.user is not None:
                try:
                    await store.get_user(args.user)
                except NotFoundError as e:
                    raise UsageError(str(e)) from None
                _, token = await auth.create_token(args.name, "user", args.user)
            else:
                _, token = await auth.create_token(args.name, "admin", "cli")
            return token
        finally:
            await store.close()

    print(asyncio.run(run()))
    return 0
