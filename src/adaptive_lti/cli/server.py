"""``serve`` runs the tool; ``db upgrade|downgrade|check`` manages the schema.

``serve --workers N`` runs N uvicorn worker processes on one socket, bound here (so ``--port 0``
works and the address is printed). Each worker runs its own score-delivery thread: the outbox
claim (``db/grades_repo.claim_next_due``) gives every score to one worker only. On SIGTERM
uvicorn stops accepting, lets in-flight requests finish (``graceful_shutdown_seconds``), then the
app's lifespan stops the delivery worker; the process exits 0.
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
from typing import Any

from adaptive_lti.cli.database import usable_database
from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.db import migrate
from adaptive_lti.settings import Settings

APP_FACTORY = "adaptive_lti.cli.app:create_served_app"


def add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    """--host and --port, the same for ``serve`` and ``demo``."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port to listen on, 0 for any free one (default 8000)",
    )


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the tool's web server (migrates the database first)"
    )
    add_listen_arguments(serve)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes sharing the port, each with its own score delivery (default 1)",
    )
    serve.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        help="do not migrate the database first (a separate 'adaptive-lti db upgrade' does it, "
        "as the Kubernetes migration Job)",
    )
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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def listen(host: str, port: int, command: str = "serve") -> socket.socket:
    """The server's socket, bound before the workers start (they share it), so a busy port gets a
    clear message (naming ``adaptive-lti COMMAND``) and --port 0 works."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise InvalidInputError(
                f"Port {port} on {host} is already in use.",
                hint=f"Stop what uses it, or pick another port: adaptive-lti {command} --port {port + 1}",
            ) from None
        raise InvalidInputError(
            f"Cannot listen on {host}:{port}: {error.strerror}.", hint="Check --host and --port."
        ) from None
    sock.listen(2048)
    return sock


def _stopped_as_asked(_signal_number: int, _frame: object) -> None:
    return


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from adaptive_lti.web.observability import logging_config

    settings = Settings()
    # An unreachable database is a clear error before anything listens, not a traceback.
    with usable_database(settings) as engine:
        if args.migrate:
            migrate.upgrade(settings.database_url)
        else:
            engine.connect().close()
    with listen(args.host, args.port) as sock:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(
            f"adaptive-lti: listening on http://{shown}:{port} ({args.workers} worker "
            f"process{'es' if args.workers > 1 else ''}; public URL {settings.base_url})",
            flush=True,
        )
        config = uvicorn.Config(
            APP_FACTORY,
            factory=True,
            workers=args.workers,
            log_level=settings.log_level.lower(),
            proxy_headers=settings.proxy_headers,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
            log_config=logging_config(settings),
        )
        if args.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            # uvicorn raises the SIGTERM it stopped for again once it has shut down; a stop that
            # was asked for and went cleanly exits 0 (as the supervisor of several workers does).
            signal.signal(signal.SIGTERM, _stopped_as_asked)
            uvicorn.Server(config).run(sockets=[sock])
    return 0


def run_db_upgrade(args: argparse.Namespace) -> int:
    settings = Settings()
    with usable_database(settings):
        migrate.upgrade(settings.database_url, args.revision)
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
