"""The platforms' public key sets, cached per registration with their HTTP validators, so a launch
rarely fetches a JWKS (``lti/platform_keys.py`` decides when to fetch again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from adaptive_lti.core.lti import CachedKeySet
from adaptive_lti.db.registrations_repo import get_registration, key_set
from adaptive_lti.db.tables import PlatformRegistration


def load_key_set(session: Session, registration_id: int) -> CachedKeySet:
    row = session.get(PlatformRegistration, registration_id)
    if row is None:
        get_registration(session, registration_id)
        raise AssertionError("unreachable")
    return key_set(row)


def store_key_set(
    session: Session,
    registration_id: int,
    keys: Mapping[str, Any],
    *,
    fetched_at: datetime,
    expires_at: datetime,
    forced: bool,
) -> None:
    values: dict[str, Any] = {
        "jwks_cache": json.dumps(dict(keys)),
        "jwks_fetched_at": fetched_at,
        "jwks_expires_at": expires_at,
    }
    if forced:
        values["jwks_forced_refetch_at"] = fetched_at
    session.execute(
        update(PlatformRegistration)
        .where(PlatformRegistration.id == registration_id)
        .values(**values)
    )


def note_forced_refetch(session: Session, registration_id: int, when: datetime) -> None:
    """Record a forced refetch attempt even when it failed, so the rate limit still applies."""
    session.execute(
        update(PlatformRegistration)
        .where(PlatformRegistration.id == registration_id)
        .values(jwks_forced_refetch_at=when)
    )
