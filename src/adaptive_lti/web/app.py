"""The FastAPI app factory. Routers are thin: each handler calls one service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from adaptive_lti.db.session import make_engine, make_session_factory
from adaptive_lti.lti import keys
from adaptive_lti.settings import Settings
from adaptive_lti.web import errors, input_limits, observability, security
from adaptive_lti.web.deps import DatabaseAdmission
from adaptive_lti.web.grade_delivery import start_score_delivery
from adaptive_lti.web.routes import (
    deep_linking,
    designs,
    health,
    journey,
    lti,
    registration,
    teaching,
)

WEB_DIR = Path(__file__).resolve().parent


def create_app(
    settings: Settings | None = None, *, mounts: Sequence[Callable[[FastAPI], None]] = ()
) -> FastAPI:
    """The tool's app. ``mounts`` is the one hook for parts built apart from the tool (the demo
    platform, wired in ``cli/app.py``): each is called with the finished app and adds its routes."""
    settings = settings or Settings()
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(
            keys.ensure_signing_key_on_start, app.state.session_factory, settings, datetime.now(UTC)
        )
        score_delivery = start_score_delivery(
            settings,
            engine,
            getattr(app.state, "http_transport", None),
            getattr(app.state, "clock", None),
        )
        yield
        if score_delivery is not None:
            score_delivery.stop()
        await run_in_threadpool(observability.app_stopping, app)
        engine.dispose()

    app = FastAPI(
        title="adaptive-lti",
        summary="An LTI 1.3 tool that routes each learner along a YAML learning design",
        lifespan=lifespan,
        # Every unsafe request (POST, PUT, PATCH, DELETE) must prove it came from the tool's own
        # page; the platform-initiated routes are listed in security.EXEMPT_ROUTES.
        dependencies=[Depends(security.require_page_proof)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    # Requests with a database session: one connection each, one left for the grade worker.
    app.state.database_admission = DatabaseAdmission(
        settings.db_pool_size + settings.db_max_overflow - int(settings.grade_delivery_worker),
        settings.db_pool_timeout_seconds,
    )
    if settings.clock_offset_seconds:
        # Tests only (Settings refuses an offset in production): a clock some days ahead.
        offset = timedelta(seconds=settings.clock_offset_seconds)
        app.state.clock = lambda: datetime.now(UTC) + offset
    errors.install(app)
    # Innermost first: refused input still gets the security headers and a request id.
    app.add_middleware(input_limits.InputLimitsMiddleware)
    app.add_middleware(security.SecurityHeadersMiddleware)
    # Added last, so outermost: it times and tags (request id) everything inside it.
    observability.install(app, engine)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(health.router)
    app.include_router(lti.router)
    app.include_router(journey.router)
    app.include_router(deep_linking.router)
    app.include_router(designs.router)
    app.include_router(registration.router)
    app.include_router(teaching.router)
    for mount in mounts:
        mount(app)
    return app
