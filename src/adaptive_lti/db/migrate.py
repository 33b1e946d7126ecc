"""Run Alembic migrations from code (CLI ``adaptive-lti db upgrade``, the demo, the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from adaptive_lti.db.session import normalise_database_url

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
