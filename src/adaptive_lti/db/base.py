"""Declarative base with a naming convention, so Alembic names constraints the same everywhere,
and the column types that Python types map to (``Mapped[datetime]`` needs no ``mapped_column``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase

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
