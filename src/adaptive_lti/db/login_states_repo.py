"""OIDC login state: the ``state`` and ``nonce`` of a login, kept until the launch consumes them
once (``consume_login_state`` deletes and returns in one statement, so a replay finds nothing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from adaptive_lti.core.lti import LoginStateInfo
from adaptive_lti.db.base import as_utc, core_table
from adaptive_lti.db.tables import LoginState


def _login_state_info(row: Any) -> LoginStateInfo:
    return LoginStateInfo(
        state=row.state,
        nonce=row.nonce,
        registration_id=row.registration_id,
        target_link_uri=row.target_link_uri,
        login_hint=row.login_hint,
        lti_message_hint=row.lti_message_hint,
        deployment_hint=row.deployment_hint,
        storage_target=row.storage_target,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
    )


_LOGIN_STATE_COLUMNS = (
    LoginState.state,
    LoginState.nonce,
    LoginState.registration_id,
    LoginState.target_link_uri,
    LoginState.login_hint,
    LoginState.lti_message_hint,
    LoginState.deployment_hint,
    LoginState.storage_target,
    LoginState.created_at,
    LoginState.expires_at,
)


_LOGIN_STATE_INSERT = insert(core_table(LoginState))


def insert_login_state(session: Session, login: LoginStateInfo) -> None:
    session.execute(
        _LOGIN_STATE_INSERT,
        dict(
            state=login.state,
            nonce=login.nonce,
            registration_id=login.registration_id,
            target_link_uri=login.target_link_uri,
            login_hint=login.login_hint,
            lti_message_hint=login.lti_message_hint,
            deployment_hint=login.deployment_hint,
            storage_target=login.storage_target,
            created_at=login.created_at,
            expires_at=login.expires_at,
        ),
    )


def peek_login_state(session: Session, state: str) -> LoginStateInfo | None:
    row = session.execute(
        select(*_LOGIN_STATE_COLUMNS).where(LoginState.state == state)
    ).one_or_none()
    return None if row is None else _login_state_info(row)


_LOGIN_STATE_TABLE = core_table(LoginState)


_CONSUME_LOGIN_STATE = (
    delete(_LOGIN_STATE_TABLE)
    .where(_LOGIN_STATE_TABLE.c.state == bindparam("state"))
    .returning(*(_LOGIN_STATE_TABLE.c[column.key] for column in _LOGIN_STATE_COLUMNS))
)


def consume_login_state(session: Session, state: str) -> LoginStateInfo | None:
    """Delete the login and return it, in one statement: two launches racing with the same
    state cannot both get it (the second finds nothing once the first's delete is committed).
    A Core statement: the ORM's bulk-delete machinery costs more than the delete."""
    row = session.execute(_CONSUME_LOGIN_STATE, {"state": state}).one_or_none()
    return None if row is None else _login_state_info(row)


def purge_expired_login_states(session: Session, now: datetime) -> int:
    result = session.execute(
        delete(_LOGIN_STATE_TABLE).where(_LOGIN_STATE_TABLE.c.expires_at < now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
