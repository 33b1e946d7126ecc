"""The database as the command-line tools open it (not a subcommand: the ``design``, ``platform``,
``keys`` and ``grades`` commands use it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from adaptive_lti.core.errors import AdaptiveLtiError
from adaptive_lti.db.session import make_engine
from adaptive_lti.settings import Settings


@contextmanager
def usable_database(settings: Settings) -> Iterator[Engine]:
    """An engine on the configured database, disposed of afterwards. A database the command
    cannot use (missing tables in a new database, or an unreachable server) becomes an error
    that says what to do instead of a traceback."""
    engine = make_engine(settings.database_url)
    try:
        yield engine
    except (OperationalError, ProgrammingError) as error:
        reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
        raise AdaptiveLtiError(
            f"The database at {engine.url.render_as_string(hide_password=True)} cannot be used "
            f"({reason}).",
            hint="Check ADAPTIVE_LTI_DATABASE_URL and run 'adaptive-lti db upgrade'.",
        ) from None
    finally:
        engine.dispose()
