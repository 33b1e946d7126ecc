"""Request forgery protection and the security headers of every response.

**Unsafe requests** (POST, PUT, PATCH, DELETE) must prove they come from one of the tool's own
pages: ``require_page_proof`` (one dependency, installed on the whole app in ``app.py``) refuses
them unless they carry the signed tool-session token (``lti/session.py``) in the ``tool_session``
form field or the ``X-Tool-Session`` header. The session cookie alone never counts: it is
``SameSite=None`` on https (the tool runs in the platform's iframe), so a form on any site would
send it. The token is only in the tool's pages, which no other site can read; a custom header
cannot be sent cross-site without a CORS preflight, which the tool never grants.

Where browsers send them, ``Origin`` (or, without it, ``Referer``) must also be the tool's own
origin (``Settings.base_url``). ``Origin: null`` is accepted, deliberately, with the token: the
tool's pages answer with ``Referrer-Policy: no-referrer`` (the token is in some of their links),
and under that policy browsers send ``Origin: null`` for the pages' own form posts, as they do
from sandboxed frames and after cross-origin redirects. A page elsewhere that forges ``null`` (a
sandboxed frame) still has no token.

``EXEMPT_ROUTES`` lists the unsafe routes that are posted cross-site by design, each with the
check that protects it instead.

``SecurityHeadersMiddleware`` adds to every response a Content-Security-Policy with no inline
script or style, ``frame-ancestors`` from the registered platforms' origins (read from the
registration table, cached for ``FRAME_ANCESTORS_TTL_SECONDS`` per process), ``nosniff``,
``Referrer-Policy`` (unless the route chose one) and, in production, HSTS.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adaptive_lti.core.errors import PermissionDeniedError
from adaptive_lti.db import registrations_repo
from adaptive_lti.lti import session as tool_session
from adaptive_lti.settings import Environment, Settings

log = logging.getLogger("adaptive_lti.web.security")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
DEMO_PLATFORM_PREFIX = "/demo-platform/"
REGISTRATION_PATH = "/lti/register"
# An origin as a CSP source: nothing that could end the directive or add another one.
CSP_ORIGIN = re.compile(
    r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?"
)


@dataclass(frozen=True)
class Exemption:
    """An unsafe route that another site posts by design, and what protects it instead."""

    path: str
    reason: str
    prefix: bool = False

    def covers(self, path: str) -> bool:
        return path.startswith(self.path) if self.prefix else path == self.path


EXEMPT_ROUTES: tuple[Exemption, ...] = (
    Exemption(
        "/lti/login",
        "OIDC third-party initiated login (LTI Core 1.3 §4.1, §5.1.1): the platform's page posts "
        "it cross-site. It changes nothing but a new login state, and the launch must return "
        "that state (bound to this browser) and its one-time nonce.",
    ),
    Exemption(
        "/lti/launch",
        "The platform's form_post of the id_token (OIDC Core §3.1.2.5, LTI Core 1.3 §5.1.2): "
        "cross-site by design. Protected by the id_token's signature (the platform's key), the "
        "OIDC state bound to this browser's login and the nonce, accepted once.",
    ),
    Exemption(
        DEMO_PLATFORM_PREFIX,
        "The demo platform: a separate stand-in VLE mounted in the same process for the demo and "
        "tests (never in production). It receives the tool's deep-linking return and "
        "service calls as a real platform does, cross-site, and has its own checks.",
        prefix=True,
    ),
)


def exemption_for(path: str) -> Exemption | None:
    return next((exemption for exemption in EXEMPT_ROUTES if exemption.covers(path)), None)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port is None or port == default else f"{scheme}://{host}:{port}"


def _refused(message: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        message,
        hint="Reopen the activity from your course, then use the tool's own buttons and forms. "
        "If you followed a link or a form from another site, it was not the tool's.",
    )


def _check_origin(request: Request, tool_origin: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None:
        if origin.strip() == "null" or origin_of(origin) == tool_origin:
            return
        raise _refused(
            f"This request was sent from a page on {origin_of(origin) or 'another site'}, not "
            "from the tool's own pages, so it was refused."
        )
    referer = request.headers.get("referer")
    if referer and origin_of(referer) != tool_origin:
        raise _refused(
            f"This request was sent from a page on {origin_of(referer) or 'another site'}, not "
            "from the tool's own pages, so it was refused."
        )


async def presented_token(request: Request) -> str | None:
    """The tool-session token the request itself carries: the ``X-Tool-Session`` header, or the
    ``tool_session`` field of a posted form; for safe requests also the query parameter (links).
    Never the cookie: a browser adds that to requests other sites make."""
    token = request.headers.get(tool_session.HEADER)
    if not token and request.method in SAFE_METHODS:
        token = request.query_params.get(tool_session.FIELD)
    if not token and request.method not in SAFE_METHODS:
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith(FORM_TYPES):
            value = (await request.form()).get(tool_session.FIELD)
            token = value if isinstance(value, str) else None
    return token or None


async def require_page_proof(request: Request) -> None:
    """Refuse an unsafe request that does not prove it came from the tool's own page."""
    if request.method in SAFE_METHODS or exemption_for(request.url.path) is not None:
        return
    settings: Settings = request.app.state.settings
    _check_origin(request, origin_of(settings.base_url))
    token = await presented_token(request)
    if token is None:
        raise _refused(
            "This request did not come from one of the tool's pages: it carries no tool session "
            "token (a browser's cookie alone is not enough to change anything)."
        )
    # Expired or altered tokens are refused here too, with lti/session.py's own explanation.
    clock: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    now = clock() if clock is not None else datetime.now(UTC)
    tool_session.verify(token, settings.secret_key, now)


PageProofDep = Annotated[None, Depends(require_page_proof)]


# --- headers ------------------------------------------------------------------------------------

FRAME_ANCESTORS_TTL_SECONDS = 60.0


def platform_origins(session: Session) -> list[str]:
    """The origins of the registered platforms' pages (issuer and login URL), for
    ``frame-ancestors``: a platform embeds the tool from the host it serves its pages on.

    Moodle, Sakai and D2L serve their pages from their issuer's host. Canvas and Blackboard do
    not (issuer ``canvas.instructure.com``, pages on ``school.instructure.com``): framing from
    such hosts needs their origin configured (``ADAPTIVE_LTI_FRAME_ANCESTORS``, added by the
    middleware) or, later, recorded from the launch's ``launch_presentation.return_url`` (LTI
    Core 1.3 §5.4.4)."""
    origins: set[str] = set()
    for registration in registrations_repo.list_registrations(session):
        for url in (registration.issuer, registration.auth_login_url):
            origin = origin_of(url)
            if CSP_ORIGIN.fullmatch(origin):
                origins.add(origin)
    return sorted(origins)


def content_security_policy(frame_ancestors: Iterable[str]) -> str:
    ancestors = " ".join(["'self'", *frame_ancestors])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            # Designs' Markdown may show images from the web (markdown-it allows image data URLs).
            "img-src 'self' https: data:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-src 'self'",
            f"frame-ancestors {ancestors}",
            # No form-action: the deep-linking answer posts to the platform's return URL, whose
            # host (Canvas: the institution's) need not be any registered URL's.
        ]
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every response (a pure ASGI middleware: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._policy: str | None = None
        self._policy_expires = 0.0

    async def _current_policy(self, scope: Scope) -> str:
        if self._policy is not None and time.monotonic() < self._policy_expires:
            return self._policy
        factory: sessionmaker[Session] = scope["app"].state.session_factory
        try:
            origins = await run_in_threadpool(_read_platform_origins, factory)
        except Exception:  # a header must never fail the response
            log.warning("could not read the platforms' origins for frame-ancestors", exc_info=True)
            if self._policy is not None:
                return self._policy
            origins = []
        configured: Settings = scope["app"].state.settings
        self._policy = content_security_policy(sorted({*origins, *configured.frame_ancestors}))
        self._policy_expires = time.monotonic() + FRAME_ANCESTORS_TTL_SECONDS
        return self._policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = await self._current_policy(scope)
        registering = _registering_platform(scope)
        if registering:
            policy = policy.replace(
                "frame-ancestors 'self'", f"frame-ancestors 'self' {registering}"
            )
        settings: Settings = scope["app"].state.settings
        production = settings.environment is Environment.production

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                # The tool's pages carry the session token in some links: never send it on.
                headers.setdefault("Referrer-Policy", "no-referrer")
                if production:
                    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _registering_platform(scope: Scope) -> str:
    """The origin of the platform opening dynamic registration (LTI Dynamic Registration 1.0
    §3.3): it is not registered yet, and Moodle opens the page in a frame of its own. The page
    acts on GET, without a click to steal, so the origin its own URL names may frame it."""
    if scope.get("path") != REGISTRATION_PATH:
        return ""
    configuration = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(
        "openid_configuration", [""]
    )[0]
    origin = origin_of(configuration)
    return origin if CSP_ORIGIN.fullmatch(origin) else ""


def _read_platform_origins(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return platform_origins(session)
