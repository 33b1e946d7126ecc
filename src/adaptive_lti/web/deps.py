"""Dependencies: settings, one database session with one transaction per request, the clock,
and the LTI ones: the launch being received (``LaunchDep``) and the tool session of follow-up
requests (``ToolSessionDep``, ``InstructorDep``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from adaptive_lti.core.errors import PermissionDeniedError
from adaptive_lti.db.session import DatabaseBusyError
from adaptive_lti.lti import keys
from adaptive_lti.lti import session as tool_session
from adaptive_lti.lti.adapters import FastAPICookieService, FastAPIRequest
from adaptive_lti.lti.tool import AcceptedLaunch, BindingNeeded, LtiTool
from adaptive_lti.settings import Settings
from adaptive_lti.web import security


def _load_secret(app: Any) -> Settings:
    """The app's settings with the tool's own secret when none is configured (read or made once,
    in a transaction of its own: callers hold no other session)."""
    settings: Settings = app.state.settings
    if settings.secret_key is None:
        settings = keys.settings_with_secret(app.state.session_factory, settings)
        app.state.settings = settings
    return settings


async def get_settings(request: Request) -> Settings:
    # async: instant after the first request, so FastAPI need not send it to its threadpool.
    settings: Settings = request.app.state.settings
    if settings.secret_key is None:
        settings = await run_in_threadpool(_load_secret, request.app)
    return settings


class DatabaseAdmission:
    """At most ``capacity`` requests of this process have a database session at once.

    FastAPI runs a request's sync dependencies and its handler as separate threadpool jobs, and
    a session holds its connection from its first statement to the commit. Unbounded, requests
    holding a connection while they wait for a thread and threads waiting for a connection
    block each other until the pool times out (200 concurrent launches on two processes: 77
    failed). With no more sessions than the pool has connections, a request that has a thread
    always finds a connection. Requests queue here, in the event loop, at no thread's cost."""

    def __init__(self, capacity: int, timeout_seconds: float) -> None:
        self._slots = anyio.Semaphore(max(capacity, 1))
        self._timeout = timeout_seconds

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        with anyio.move_on_after(self._timeout) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise DatabaseBusyError(self._timeout)
        try:
            yield
        finally:
            self._slots.release()


def _finish(session: Session, succeeded: bool) -> None:
    try:
        if succeeded:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Commit when the handler returns, roll back when it raises (the error handler then answers)."""
    if request.app.state.settings.secret_key is None:
        # Before this request's session exists: SQLite allows one writer at a time.
        await run_in_threadpool(_load_secret, request.app)
    admission: DatabaseAdmission = request.app.state.database_admission
    async with admission.admitted():
        session: Session = request.app.state.session_factory()
        try:
            yield session
        except BaseException:
            # A limiter of its own: finishing never waits for a worker thread while it holds a
            # connection (as FastAPI does for the exit of sync dependencies).
            await to_thread.run_sync(_finish, session, False, limiter=CapacityLimiter(1))
            raise
        await to_thread.run_sync(_finish, session, True, limiter=CapacityLimiter(1))


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit before the response is sent. With FastAPI's default ("request") the
# commit runs after the answer has left, so a browser can act on a page (the login redirect, a
# launch page) whose rows are not committed yet, and a failed commit is never reported.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_now(request: Request) -> datetime:
    """The current time; tests set ``app.state.clock`` to a callable to move it."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


async def _now_dependency(request: Request) -> datetime:
    # async, unlike get_now (which handlers call directly): no threadpool hop for the clock.
    return get_now(request)


NowDep = Annotated[datetime, Depends(_now_dependency)]


async def get_lti_tool(request: Request) -> LtiTool:
    """One ``LtiTool`` per app, made on first use (tests may set ``app.state.http_transport``
    or replace ``app.state.session_factory`` before the first request)."""
    tool: LtiTool | None = getattr(request.app.state, "lti_tool", None)
    if tool is None:
        tool = LtiTool(
            request.app.state.settings,
            request.app.state.session_factory,
            transport=getattr(request.app.state, "http_transport", None),
        )
        request.app.state.lti_tool = tool
    return tool


LtiToolDep = Annotated[LtiTool, Depends(get_lti_tool)]


@dataclass(frozen=True)
class LtiHttp:
    """The request's LTI parameters and the cookies to read and set, shared by the
    dependencies and the handler of one request."""

    request: FastAPIRequest
    cookies: FastAPICookieService


async def get_lti_http(request: Request, tool: LtiToolDep) -> LtiHttp:
    adapter = await FastAPIRequest.from_request(request, secure=tool.secure)
    return LtiHttp(adapter, FastAPICookieService(adapter))


LtiHttpDep = Annotated[LtiHttp, Depends(get_lti_http)]


@dataclass(frozen=True)
class PlatformErrorReport:
    """The platform answered the login with an OIDC error (Moodle posts ``error``)."""

    error: str
    description: str


def get_launch(
    http: LtiHttpDep, tool: LtiToolDep, session: SessionDep, now: NowDep
) -> AcceptedLaunch | BindingNeeded | PlatformErrorReport:
    """The launch being received, fully checked (a sync dependency: FastAPI runs it in its
    threadpool, so the database and any JWKS fetch never block the event loop)."""
    error = http.request.get_param("error")
    if error is not None and http.request.get_param("id_token") is None:
        return PlatformErrorReport(
            error=error[:200], description=(http.request.get_param("error_description") or "")[:500]
        )
    return tool.accept_launch(session, http.request, http.cookies, now)


LaunchDep = Annotated[AcceptedLaunch | BindingNeeded | PlatformErrorReport, Depends(get_launch)]


async def get_tool_session(
    request: Request, settings: SettingsDep, now: NowDep
) -> tool_session.ToolSession:
    """The tool session of a follow-up request: the ``X-Tool-Session`` header or the
    ``tool_session`` form field (or query parameter of a link), or, for a request that changes
    nothing (GET), the cookie when the browser kept it. An unsafe request never counts on the
    cookie: ``security.require_page_proof`` has already refused one that came without the token."""
    token = await security.presented_token(request)
    if not token and request.method in security.SAFE_METHODS:
        token = request.cookies.get(tool_session.COOKIE)
    if not token:
        raise PermissionDeniedError(
            "This page belongs to a launch from your course, and no tool session came with the request.",
            hint="Reopen the activity from your course page.",
        )
    return tool_session.verify(token, settings.secret_key, now)


ToolSessionDep = Annotated[tool_session.ToolSession, Depends(get_tool_session)]


async def require_instructor(session: ToolSessionDep) -> tool_session.ToolSession:
    if not session.is_instructor:
        raise PermissionDeniedError(
            "This page is for the course's instructors.",
            hint="Your roles in this course do not include teaching it; ask the course's "
            "instructor if you need access.",
        )
    return session


InstructorDep = Annotated[tool_session.ToolSession, Depends(require_instructor)]
