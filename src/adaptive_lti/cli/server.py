"""``serve`` runs the tool; ``db upgrade|downgrade|check`` manages the schema."""

from __future__ import annotations

import argparse
from typing import Any

from adaptive_lti.db import migrate
from adaptive_lti.settings import Settings


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the tool's web server (migrates the database first)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(handler=run_serve)

    db = subparsers.add_parser("db", help="manage the database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="migrate the database to the newest schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=run_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="migrate the database back to REVISION")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=run_db_downgrade)
    check = db_commands.add_parser("check", help="fail if the tables differ from the migrations")
    check.set_defaults(handler=run_db_check)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from adaptive_lti.web.observability import logging_config

    settings = Settings()
    migrate.upgrade(settings.database_url)
    uvicorn.run(
        "adaptive_lti.web.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings),
    )
    return 0


def run_db_upgrade(args: argparse.Namespace) -> int:
    migrate.upgrade(Settings().database_url, args.revision)
    print(f"database upgraded to {args.revision}")
    return 0


def run_db_downgrade(args: argparse.Namespace) -> int:
    migrate.downgrade(Settings().database_url, args.revision)
    print(f"database downgraded to {args.revision}")
    return 0


def run_db_check(_args: argparse.Namespace) -> int:
    migrate.check(Settings().database_url)
    print("the database schema matches the tables")
    return 0
