"""What a "nothing was written" check compares: the contents of every table, hashed per table.

Row counts miss an UPDATE, and counting a few tables misses a row in any other one. Here every
table of the metadata is read in primary-key order and each row's values hashed, so a refusal
test that compares ``table_checksums`` before and after sees any insert, update or delete, in
any table, and the assertion's diff names the tables that changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adaptive_lti.db.tables import Base

# Tables a refusal is meant to write to: the operator's count of refused logins and launches
# (``adaptive-lti status``), which records that something was refused, not anything it asked for.
REFUSAL_RECORD_TABLES = frozenset({"lti_refusal_count"})

# Caches a request may fill on its way to being refused, which are not data it wrote: the
# platform's key set, fetched (and refetched, rate limited) to check the launch's signature.
CACHE_COLUMNS: dict[str, frozenset[str]] = {
    "lti_registration": frozenset(
        {"jwks_cache", "jwks_fetched_at", "jwks_expires_at", "jwks_forced_refetch_at"}
    ),
}


def _value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return value


def table_checksums(session: Session) -> dict[str, str]:
    """``{table: "<row count>:<sha256 of its rows>"}`` for every table the tool defines (every
    column but the ``CACHE_COLUMNS``; not the ``REFUSAL_RECORD_TABLES``)."""
    sums: dict[str, str] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in REFUSAL_RECORD_TABLES:
            continue
        skipped = CACHE_COLUMNS.get(table.name, frozenset())
        columns = [column for column in table.columns if column.name not in skipped]
        order = list(table.primary_key.columns) or columns
        rows = session.execute(select(*columns).order_by(*order)).all()
        digest = hashlib.sha256()
        for row in rows:
            line = json.dumps([_value(v) for v in row], default=str, sort_keys=True)
            digest.update(line.encode("utf-8") + b"\n")
        sums[table.name] = f"{len(rows)}:{digest.hexdigest()}"
    return sums
