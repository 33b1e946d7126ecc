"""The tool's generated session secret: one row, written once by whichever process starts first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adaptive_lti.db.tables import ToolSecret

SECRET_ROW_ID = 1


def stored_secret(session: Session) -> str | None:
    row = session.get(ToolSecret, SECRET_ROW_ID)
    return row.secret if row is not None else None


def store_secret_once(session: Session, secret: str, now: datetime) -> str:
    """Keep ``secret`` unless another process stored one first; the secret kept is returned."""
    existing = stored_secret(session)
    if existing is not None:
        return existing
    try:
        # A savepoint: two processes starting together both insert; the loser reads the winner's.
        with session.begin_nested():
            session.add(ToolSecret(id=SECRET_ROW_ID, secret=secret, created_at=now))
    except IntegrityError:
        session.expire_all()
        winner = stored_secret(session)
        if winner is None:  # pragma: no cover - the conflicting row is committed
            raise
        return winner
    return secret
