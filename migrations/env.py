"""Alembic environment: migrates the database named by the config or ADAPTIVE_LTI_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from adaptive_lti.db.session import make_engine
from adaptive_lti.db.tables import Base
from adaptive_lti.settings import Settings

config = context.config


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or Settings().database_url


def run_migrations_online() -> None:
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        # Also when a revision refuses: its connection is closed, not left to the collector.
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
