"""The tool's signing keys: rows of ``tool_keys`` <-> ``ToolKeyInfo`` (private keys are sealed at
rest by the caller; a retired key stays published until the tokens it signed have expired).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import ConflictError, NotFoundError
from adaptive_lti.core.lti import ToolKeyInfo
from adaptive_lti.db.base import as_utc, as_utc_or_none
from adaptive_lti.db.tables import ToolKey


def _tool_key_info(row: ToolKey, private_key_pem: str) -> ToolKeyInfo:
    return ToolKeyInfo(
        kid=row.kid,
        public_jwk=dict(row.public_jwk),
        active=row.status == "active",
        created_at=as_utc(row.created_at),
        retired_at=as_utc_or_none(row.retired_at),
        private_key_pem=private_key_pem,
    )


@dataclass(frozen=True)
class StoredToolKey:
    """A tool key row: the private key is either in the database or in a file named here."""

    info: ToolKeyInfo
    private_key_path: str | None


def list_tool_keys(session: Session, *, active_only: bool = False) -> list[StoredToolKey]:
    query = select(ToolKey).order_by(ToolKey.created_at, ToolKey.kid)
    if active_only:
        query = query.where(ToolKey.status == "active")
    return [
        StoredToolKey(_tool_key_info(row, row.private_key_pem or ""), row.private_key_path)
        for row in session.scalars(query)
    ]


def add_tool_key(
    session: Session,
    *,
    kid: str,
    public_jwk: Mapping[str, Any],
    now: datetime,
    private_key_pem: str | None = None,
    private_key_path: str | None = None,
) -> None:
    session.add(
        ToolKey(
            kid=kid,
            private_key_pem=private_key_pem,
            private_key_path=private_key_path,
            public_jwk=dict(public_jwk),
            status="active",
            created_at=now,
        )
    )
    session.flush()


def retire_tool_key(session: Session, kid: str, now: datetime) -> None:
    row = session.get(ToolKey, kid)
    if row is None:
        raise NotFoundError(
            f"There is no tool key with kid {kid!r}.",
            hint="Use 'adaptive-lti keys list' to see the keys.",
        )
    if row.status != "active":
        raise ConflictError(f"The tool key {kid!r} is already retired.")
    active = session.scalar(
        select(func.count()).select_from(ToolKey).where(ToolKey.status == "active")
    )
    if active is not None and active <= 1:
        raise ConflictError(
            f"The tool key {kid!r} is the only active key; retiring it would leave nothing to sign with.",
            hint="Run 'adaptive-lti keys rotate' first, then retire the old key.",
        )
    row.status = "retired"
    row.retired_at = now
    session.flush()
