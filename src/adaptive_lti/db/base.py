"""Declarative base with a naming convention, so Alembic names constraints the same everywhere,
and the column types that Python types map to (``Mapped[datetime]`` needs no ``mapped_column``);
and what every repository shares (``as_utc``, ``core_table``, ``upsert``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Times are stored in UTC with their zone; documents (claims, payloads, lists) as JSON.
    type_annotation_map = {  # noqa: RUF012 - read once, when the mapped classes are made
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        dict[str, str]: JSON,
        list[str]: JSON,
    }


def core_table(mapped: type[Any]) -> Table:
    """The Core table of a mapped class, for statements that skip the ORM's overhead."""
    table = mapped.__table__
    assert isinstance(table, Table)
    return table


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: every stored time is UTC, so say so."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], Any] = {}


def upsert(
    session: Session,
    table: type[Any],
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
    update_columns: Sequence[str],
) -> int:
    """INSERT ... ON CONFLICT (conflict) DO UPDATE/NOTHING, returning the row's id.

    The statement is built once per table and column set and reused with new parameters:
    building it (``excluded`` column proxies) costs more than running it."""
    dialect = session.get_bind().dialect.name
    core = core_table(table)
    key = (dialect, core.name, tuple(values), tuple(conflict), tuple(update_columns))
    statement = _UPSERTS.get(key)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = insert(core)
        if update_columns:
            statement = base.on_conflict_do_update(
                index_elements=list(conflict),
                set_={column: base.excluded[column] for column in update_columns},
            )
        else:
            statement = base.on_conflict_do_nothing(index_elements=list(conflict))
        statement = statement.returning(core.c.id)
        _UPSERTS[key] = statement
    result = session.execute(statement, dict(values)).scalar_one_or_none()
    if result is None:  # DO NOTHING returned no row: the row was already there
        keys = [core.c[column] == values[column] for column in conflict]
        result = session.execute(select(core.c.id).where(*keys)).scalar_one()
    return int(result)
