"""Run Alembic migrations from code (CLI ``adaptive-lti db upgrade``, the demo, the tests)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import normalise_database_url

log = logging.getLogger("adaptive_lti.db.migrate")
VERSION_TABLE = "alembic_version"
_VERSIONS = table(VERSION_TABLE, column("version_num"))

# The repository root holds alembic.ini and migrations/ (src/adaptive_lti/db/migrate.py -> root).
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # ConfigParser treats % as interpolation: escape it (passwords may contain %).
    config.set_main_option(
        "sqlalchemy.url", normalise_database_url(database_url).replace("%", "%%")
    )
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the tables in ``db/tables.py`` differ from what the migrations build."""
    command.check(alembic_config(database_url))


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revisions the migrations end at (read once: the files do not change under a process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def schema_problem(connection: Connection) -> str | None:
    """Why the database's schema is not the one this code expects, or None when it is at head."""
    # Read alembic_version directly: MigrationContext would log two INFO lines per probe.
    current: frozenset[str] = frozenset()
    if inspect(connection).has_table(VERSION_TABLE):
        current = frozenset(connection.execute(select(_VERSIONS.c.version_num)).scalars())
    expected = head_revisions()
    if current == expected:
        return None
    shown = ", ".join(sorted(current)) or "no revision (an empty database)"
    return (
        f"the database schema is at {shown}, this version of the tool needs "
        f"{', '.join(sorted(expected))}: run 'adaptive-lti db upgrade'"
    )


def database_problem(session_factory: sessionmaker[Session]) -> str | None:
    """Why the tool cannot use its database now (unreachable, or schema not at head), or None."""
    try:
        with session_factory() as session:
            return schema_problem(session.connection())
    except SQLAlchemyError as error:
        log.warning("readiness: the database cannot be used: %s", error)
        return (
            f"the database cannot be reached ({type(error).__name__}): check that it is up "
            "and ADAPTIVE_LTI_DATABASE_URL; the server's log has the driver's message"
        )
