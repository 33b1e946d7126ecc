"""The tool session: a signed, short-lived token for the requests that follow a launch.

Inside Moodle's iframe the browser may refuse the tool's cookies, so the session does not depend
on one: the launch page carries the token (a hidden form field ``tool_session``, a query
parameter for links, or the ``X-Tool-Session`` header for scripts), and a partitioned cookie is
set as well for browsers that accept it. The cookie only ever opens pages (GET): a request that
changes something must carry the token itself (``web/security.py``), since a browser attaches the
cookie to forms other sites post too. The token is an HS256 JWT keyed by a key derived from
``Settings.secret_key`` (so the secret itself never signs anything else), bound to the platform,
deployment, context, user and roles of the launch, and it expires after
``Settings.session_ttl_seconds``. Nothing is stored server-side: any process can check it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from adaptive_lti.core.errors import AdaptiveLtiError, PermissionDeniedError

HEADER = "X-Tool-Session"
FIELD = "tool_session"
COOKIE = "adaptive_lti_session"
ISSUER = "adaptive-lti"
AUDIENCE = "adaptive-lti/tool-session"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class ToolSession:
    launch_id: int
    registration_id: int
    deployment_pk: int
    context_pk: int | None
    resource_link_pk: int | None
    user_pk: int | None
    subject: str | None
    roles: tuple[str, ...]
    is_instructor: bool
    expires_at: datetime


def _session_key(secret_key: str | None) -> bytes:
    if not secret_key:
        # Never sign or check with a missing secret: web/deps.py fills it in before any use.
        raise AdaptiveLtiError(
            "The tool's session secret is not loaded.",
            hint="Set ADAPTIVE_LTI_SECRET_KEY, or let the tool make its own on start.",
        )
    return hmac.new(
        secret_key.encode("utf-8"), b"adaptive-lti tool session v1", hashlib.sha256
    ).digest()


def issue(session: ToolSession, secret_key: str | None, now: datetime) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(session.expires_at.timestamp()),
        "lid": session.launch_id,
        "reg": session.registration_id,
        "dep": session.deployment_pk,
        "ctx": session.context_pk,
        "rl": session.resource_link_pk,
        "usr": session.user_pk,
        "sub": session.subject,
        "roles": list(session.roles),
        "ins": session.is_instructor,
    }
    return jwt.encode(claims, _session_key(secret_key), algorithm=ALGORITHM)


def new_session(
    *,
    launch_id: int,
    registration_id: int,
    deployment_pk: int,
    context_pk: int | None,
    resource_link_pk: int | None,
    user_pk: int | None,
    subject: str | None,
    roles: tuple[str, ...],
    is_instructor: bool,
    now: datetime,
    ttl_seconds: int,
) -> ToolSession:
    return ToolSession(
        launch_id=launch_id,
        registration_id=registration_id,
        deployment_pk=deployment_pk,
        context_pk=context_pk,
        resource_link_pk=resource_link_pk,
        user_pk=user_pk,
        subject=subject,
        roles=roles,
        is_instructor=is_instructor,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError("not an integer")


def verify(token: str, secret_key: str | None, now: datetime) -> ToolSession:
    """The session a token carries; ``PermissionDeniedError`` (403) when it is not valid."""
    hint = "Open the activity again from your course page to start a new session."
    if len(token) > 8192:
        raise PermissionDeniedError("The tool session token is not valid.", hint=hint)
    try:
        claims = jwt.decode(
            token,
            _session_key(secret_key),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            # Times are checked against the injected clock, not PyJWT's.
            options={
                "require": ["exp", "iat", "lid", "reg", "dep"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        if int(claims["exp"]) <= now.timestamp():
            raise PermissionDeniedError("Your session in the tool has expired.", hint=hint)
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise TypeError("roles")
        subject = claims.get("sub")
        return ToolSession(
            launch_id=int(claims["lid"]),
            registration_id=int(claims["reg"]),
            deployment_pk=int(claims["dep"]),
            context_pk=_optional_int(claims.get("ctx")),
            resource_link_pk=_optional_int(claims.get("rl")),
            user_pk=_optional_int(claims.get("usr")),
            subject=subject if isinstance(subject, str) else None,
            roles=tuple(roles),
            is_instructor=claims.get("ins") is True,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
        )
    except (jwt.InvalidTokenError, TypeError, ValueError, KeyError):
        raise PermissionDeniedError(
            "The tool session token is not valid (altered, or signed by another server).",
            hint=hint,
        ) from None
