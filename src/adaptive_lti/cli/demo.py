"""``adaptive-lti demo``: the tool and the built-in demo LTI platform in one server, on SQLite.

It migrates the database, makes the tool's signing key if there is none, mounts the demo
platform (which registers itself with the tool on start: ``demo/routes/mounting.py``) and
serves both with uvicorn. Everything the demo keeps (database, the demo platform's key) lives in
the data directory, ``./demo-data`` unless told otherwise.
"""

from __future__ import annotations

import argparse
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.cli.server import add_listen_arguments, listen
from adaptive_lti.db import migrate
from adaptive_lti.settings import Settings

DEFAULT_DATA_DIR = Path("demo-data")
# The example course the demo platform's activity is bound to (custom parameter design=...).
EXAMPLE_DESIGN = (
    Path(__file__).resolve().parents[3] / "examples" / "intro-programming" / "design.yaml"
)
# Hosts that listen everywhere: the URL to open in a browser is the loopback one.
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 - names, not a bind


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the tool with a built-in demo LTI platform (SQLite, no set-up needed)",
        description="Run the tool together with a small LTI 1.3 platform in one server. Open the "
        "printed URL and launch the tool as one of the demo learners or the instructor.",
    )
    add_listen_arguments(demo)
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where the demo keeps its database and keys (default ./{DEFAULT_DATA_DIR})",
    )
    demo.add_argument(
        "--database-url",
        help="database to use instead of the SQLite file in the data directory "
        "(also ADAPTIVE_LTI_DATABASE_URL)",
    )
    demo.set_defaults(handler=run_demo)


def demo_settings(
    environment_settings: Settings, *, data_dir: Path, database_url: str | None, url: str
) -> Settings:
    """The settings of a demo server: the environment's, with the demo's defaults filled in.

    What the environment sets explicitly (ADAPTIVE_LTI_DATABASE_URL, ADAPTIVE_LTI_BASE_URL, ...)
    wins over the demo's defaults; ``--database-url`` wins over both.
    """
    explicit = environment_settings.model_fields_set
    updates: dict[str, Any] = {"demo_platform": True}
    if database_url:
        updates["database_url"] = database_url
    elif "database_url" not in explicit:
        updates["database_url"] = f"sqlite:///{(data_dir / 'adaptive-lti-demo.db').resolve()}"
    if "base_url" not in explicit:
        updates["base_url"] = url
    if "demo_platform_key_file" not in explicit:
        updates["demo_platform_key_file"] = (data_dir / "demo-platform-key.pem").resolve()
    # model_copy skips validation: validate again (production refuses the demo platform).
    return Settings.model_validate({**environment_settings.model_dump(), **updates})


def publish_example_design(app: FastAPI, path: Path = EXAMPLE_DESIGN) -> str:
    """Publish the example course the demo activity runs (``design=intro-programming``) into
    the demo platform's tenant (designs belong to one platform registration).

    Publishing identical content again changes nothing, so every start (and every process of
    a multi-process demo) may do it. Returns what to print about it.
    """
    from adaptive_lti.core.catalogue import Publisher, Tenant
    from adaptive_lti.core.loader import load_design_file
    from adaptive_lti.db import registrations_repo
    from adaptive_lti.db.session import transaction
    from adaptive_lti.demo.platform import ROLE_INSTRUCTOR
    from adaptive_lti.services import design_publishing

    if not path.is_file():
        return f"example design {path} not found: the demo activity shows 'not ready yet'"
    compiled = load_design_file(path)
    platform = getattr(app.state, "demo_platform", None)
    with transaction(app.state.session_factory) as session:
        registration = (
            None
            if platform is None
            else registrations_repo.find_registration(session, platform.issuer, platform.client_id)
        )
        if platform is None or registration is None:
            return "the demo platform is not registered: the demo activity shows 'not ready yet'"
        tenant = Tenant(registration.id)
        result = design_publishing.publish_design(
            session,
            tenant,
            path.read_text(encoding="utf-8"),
            path.name,
            Publisher("adaptive-lti demo", command_line=True),
            now=datetime.now(UTC),
            page_bodies=design_publishing.page_bodies_of(compiled),
        )
        # The course's teachers own the example (so the demo can show them publishing a new
        # version of it from the Designs page).
        for person in platform.people:
            if ROLE_INSTRUCTOR in person.roles:
                design_publishing.add_owner(
                    session,
                    tenant,
                    result.version.design_id,
                    subject=person.user_id,
                    name=f"{person.name} (user {person.user_id})",
                    now=datetime.now(UTC),
                )
    version = result.version
    return f"{version.design_id} version {version.version} ({version.title}), from {path}"


def ensure_tool_key(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """Make the tool's signing key now if it has none, rather than on the first request that
    needs it (the JWKS, a service call)."""
    from adaptive_lti.db.session import transaction
    from adaptive_lti.lti import keys

    with transaction(session_factory) as session:
        keys.ensure_signing_key(session, settings, datetime.now(UTC))


def run_demo(args: argparse.Namespace) -> int:
    import uvicorn

    environment_settings = Settings()
    # The socket is bound first so --port 0 can name the URL; it is closed on any refusal.
    with listen(args.host, args.port, command="demo") as sock:
        app, settings, listen_url, published = prepare_demo(args, environment_settings, sock)
        print(
            f"adaptive-lti demo: open {settings.base_url}/ in your browser\n"
            f"  demo platform: {settings.base_url}/demo-platform/  (pick a learner or the instructor)\n"
            f"  instructor's view, embedded as in Moodle: {settings.base_url}/demo-platform/course/irene\n"
            f"  register a tool by dynamic registration: {settings.base_url}/demo-platform/admin/tools\n"
            f"  listening on {listen_url}\n"
            f"  database: {settings.database_url}\n"
            f"  design: {published}\n"
            "  stop with Ctrl+C",
            flush=True,
        )
        from adaptive_lti.web.observability import logging_config

        config = uvicorn.Config(
            app,
            log_level=settings.log_level.lower(),
            log_config=logging_config(settings),
            proxy_headers=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def prepare_demo(
    args: argparse.Namespace, environment_settings: Settings, sock: socket.socket
) -> tuple[FastAPI, Settings, str, str]:
    """Settings for the bound socket, the migrated database, the example design, the app."""
    from adaptive_lti.cli.app import build_app

    port = sock.getsockname()[1]
    browser_host = "127.0.0.1" if args.host in WILDCARD_HOSTS else args.host
    if ":" in browser_host:
        browser_host = f"[{browser_host}]"
    listen_url = f"http://{browser_host}:{port}"
    settings = demo_settings(
        environment_settings,
        data_dir=args.data_dir,
        database_url=args.database_url,
        url=listen_url,
    )
    args.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)
    app = build_app(settings)
    published = publish_example_design(app)
    ensure_tool_key(app.state.session_factory, settings)
    return app, settings, listen_url, published
