"""The OIDC login state store, in the database so any process or host can finish a login that
another one started (Security Framework 1.0 §5.1.1: state and nonce).

A login writes one row: a fresh ``state`` (bound to the browser by a cookie, or by LTI platform
storage) and a fresh ``nonce`` (sent to the platform, echoed inside the signed id_token), both
256 random bits, with the ``target_link_uri`` the login asked for and an expiry. The launch
deletes the row in the same statement that reads it (``DELETE ... RETURNING``): a state and its
nonce work once, even when two copies of a launch race. Expired rows are purged now and then by
logins, so the table stays small without a scheduler.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import LoginStateInfo
from adaptive_lti.db import login_states_repo
from adaptive_lti.lti.adapters import FastAPICookieService

RANDOM_BYTES = 32  # 256 bits: well above the 128 the Security Framework asks for
STATE_PREFIX = "state-"
STATE_COOKIE_PATH = "/lti"
# One login in PURGE_ONE_IN also deletes expired login rows.
PURGE_ONE_IN = 50
STATE_CHECK = "state"
MAX_STATE_CHARS = 128


# What new_state makes: the prefix and base64url (so it is also a valid cookie name).
_STATE_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


def new_state() -> str:
    return STATE_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def new_nonce() -> str:
    return secrets.token_urlsafe(RANDOM_BYTES)


@dataclass(frozen=True)
class LoginRequest:
    registration_id: int
    target_link_uri: str
    login_hint: str
    lti_message_hint: str | None
    deployment_hint: str | None
    storage_target: str | None


def begin_login(
    session: Session, login: LoginRequest, *, now: datetime, ttl_seconds: int
) -> LoginStateInfo:
    """Store a new login and return it (state and nonce included)."""
    if secrets.randbelow(PURGE_ONE_IN) == 0:
        login_states_repo.purge_expired_login_states(session, now)
    info = LoginStateInfo(
        state=new_state(),
        nonce=new_nonce(),
        registration_id=login.registration_id,
        target_link_uri=login.target_link_uri,
        login_hint=login.login_hint,
        lti_message_hint=login.lti_message_hint,
        deployment_hint=login.deployment_hint,
        storage_target=login.storage_target,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    login_states_repo.insert_login_state(session, info)
    return info


def bind_state_cookie(cookies: FastAPICookieService, state: str, ttl_seconds: int) -> None:
    """The browser that started the login holds a cookie named after (and equal to) its state."""
    cookies.set_cookie(state, state, ttl_seconds, path=STATE_COOKIE_PATH)


def browser_holds_state(
    cookies: FastAPICookieService, state: str, storage_proof: str | None
) -> bool:
    """True when the state comes back from the browser that started the login: through its
    cookie, or through the platform's postMessage storage (``lti_storage_state`` field)."""
    from_cookie = cookies.get_cookie(state)
    if from_cookie is not None and hmac.compare_digest(from_cookie, state):
        return True
    return storage_proof is not None and hmac.compare_digest(storage_proof, state)


def valid_state_shape(state: str | None) -> bool:
    return (
        state is not None
        and state.startswith(STATE_PREFIX)
        and len(state) <= MAX_STATE_CHARS
        and _STATE_CHARACTERS.fullmatch(state) is not None
    )


def consume_login(
    session: Session,
    *,
    state: str,
    registration_id: int,
    nonce: str,
    target_link_uri: str,
    now: datetime,
) -> LoginStateInfo:
    """Use up the login this launch answers; refuse unless everything matches it."""
    login = login_states_repo.consume_login_state(session, state)
    if login is None:
        raise LaunchError(
            STATE_CHECK,
            "This launch's state is unknown: it was already used, it expired, or the login "
            "did not start here.",
            hint="Launches work once. Go back to the course page and open the activity again.",
        )
    if login.expires_at <= now:
        raise LaunchError(
            STATE_CHECK,
            "The login for this launch expired before the platform answered.",
            hint="Open the activity again from the course page.",
        )
    if login.registration_id != registration_id:
        raise LaunchError(
            STATE_CHECK,
            "The launch comes from a different platform than the login it claims to answer.",
        )
    if not hmac.compare_digest(login.nonce, nonce):
        raise LaunchError(
            "nonce",
            "The id_token's nonce is not the one this tool issued for the login.",
            hint="Launches work once. Open the activity again from the course page.",
        )
    if login.target_link_uri != target_link_uri:
        raise LaunchError(
            "target link URI",
            f"The id_token's target_link_uri {target_link_uri[:200]!r} is not the one the login "
            f"asked for ({login.target_link_uri!r}).",
            hint="The platform must launch the link it was asked to launch; check the tool's "
            "URLs in the platform's tool configuration.",
        )
    return login
