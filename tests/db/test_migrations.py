"""Migrations go from empty to head, down to empty and up again, and match the tables."""

from __future__ import annotations

from sqlalchemy import inspect

from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine
from adaptive_lti.db.tables import Base


def test_upgrade_downgrade_upgrade_and_check(new_database_url, backend: str) -> None:  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    migrate.upgrade(url)
    migrate.check(url)
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        migrate.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        migrate.check(url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
