"""What operators see of the running tool: the request's correlation id on every log line, JSON or
text logs, request latency by route template, and the ``/metrics`` page (Prometheus format).

- ``RequestContextMiddleware`` takes a sane ``X-Request-ID`` from the request or makes one,
  keeps it in a context variable for the request's whole life (uvicorn's access line included:
  uvicorn logs it from the ``send`` the app calls), echoes it in the response, and times the
  request under its route template ("/journey/{enrolment_id}", never the raw path).
- ``RequestIdFilter`` puts that id on every log record (``%(request_id)s``, "-" outside a
  request); ``logging_config`` is the configuration ``serve`` and ``demo`` give uvicorn.
- ``render_metrics`` writes the counters of ``adaptive_lti.metrics`` (added up over every process
  in prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``) and, read from the
  database at each scrape, the score outbox's backlog.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import ipaddress
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adaptive_lti import metrics
from adaptive_lti.core.errors import LaunchError, PermissionDeniedError
from adaptive_lti.db import operations_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.settings import LogFormat, Settings

log = logging.getLogger("adaptive_lti.web.observability")

REQUEST_ID_HEADER = "X-Request-ID"
# What a caller's id may look like to be kept (a UUID, a load balancer's trace id); anything
# else (too long, spaces, control characters, quotes) is replaced by an id of our own.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "adaptive_lti_request_id", default=None
)


def current_request_id() -> str | None:
    """The correlation id of the request being handled, or None outside a request."""
    return _request_id.get()


def request_id_from(header: str | None) -> str:
    if header is not None and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    """The matched route's template; a mounted app by its mount point; "unmatched" for 404s."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    if "app_root_path" in scope:
        # A Mount matched (/static): it added its own path to root_path.
        mount = str(scope.get("root_path", ""))[len(str(scope["app_root_path"])) :]
        return mount + "/{path}"
    return "unmatched"


# Any token is a valid HTTP method: others share one label instead of making a series each.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method_label(method: object) -> str:
    return method if isinstance(method, str) and method in _METHODS else "other"


class RequestContextMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware), so the context variable set here is the one the
    handlers, the error handlers and uvicorn's ``send`` (the access log) all see."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                header = value.decode("latin-1")
                break
        request_id = request_id_from(header)
        # Not reset afterwards: each request runs in a task of its own (so a context of its
        # own), and the server's last words on it (an unexpected error's log line, written
        # outside this middleware) must still carry the id.
        _request_id.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.REQUEST_DURATION.labels(
                method=_method_label(scope.get("method")),
                route=_route_template(scope),
                status=str(status),
            ).observe(time.perf_counter() - started)


# --- logs ------------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Gives every record the current request's correlation id (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True


# uvicorn's access line: '%s - "%s %s HTTP/%s" %d' % (client, method, path, version, status).
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (and the fields of
    uvicorn's access line, the traceback of an error)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get() or "-",
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(zip(_ACCESS_FIELDS, record.args, strict=False))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (uvicorn's ``log_config``): one handler on
    stderr, in the configured format, with the request id on every line, uvicorn's included."""
    level = settings.log_level.upper()
    formatter = "json" if settings.effective_log_format is LogFormat.json else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"format": TEXT_FORMAT},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": level},
    }


# --- metrics ---------------------------------------------------------------------------------


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def _update_pool_gauges(engine: Engine) -> Callable[..., None]:
    pool = engine.pool

    def update(*_args: Any) -> None:
        # QueuePool has these; pools without a size (NullPool, StaticPool) report 0.
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        overflow = getattr(pool, "overflow", None)
        metrics.POOL_CHECKED_OUT.set(checked_out() if callable(checked_out) else 0)
        metrics.POOL_SIZE.set(size() if callable(size) else 0)
        # overflow() counts down from -size while the pool is not full: only what is beyond.
        metrics.POOL_OVERFLOW.set(max(0, overflow()) if callable(overflow) else 0)

    return update


def instrument_pool(engine: Engine) -> None:
    update = _update_pool_gauges(engine)
    for name in ("connect", "checkout", "checkin", "close"):
        event.listen(engine.pool, name, update)
    update()


class OutboxCollector(Collector):
    """The score outbox's backlog, read from the database at each scrape (every process sees
    the same table, so any process's answer is the whole tool's)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        factory: sessionmaker[Session] = self._app.state.session_factory
        clock: Callable[[], datetime] | None = getattr(self._app.state, "clock", None)
        now = clock() if clock is not None else datetime.now(UTC)
        try:
            with factory() as session:
                backlog = operations_repo.outbox_backlog(session)
        except SQLAlchemyError as error:
            log.warning("metrics: the score outbox cannot be read: %s", type(error).__name__)
            return
        yield GaugeMetricFamily(
            "adaptive_lti_score_outbox_pending",
            "Scores waiting to be delivered to the platforms.",
            value=backlog.pending,
        )
        yield GaugeMetricFamily(
            "adaptive_lti_score_outbox_failed",
            "Scores whose delivery failed for good ('adaptive-lti grades retry' queues them again).",
            value=backlog.failed,
        )
        yield GaugeMetricFamily(
            "adaptive_lti_score_outbox_oldest_pending_age_seconds",
            "Age of the oldest score still waiting (0 when none waits).",
            value=backlog.oldest_pending_age_seconds(now),
        )


def render_metrics(app: FastAPI) -> tuple[bytes, str]:
    """The text of /metrics and its content type."""
    if multiprocess_mode():
        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        counters = generate_latest(registry)
    else:
        counters = generate_latest(REGISTRY)
    return counters + generate_latest(app.state.metrics_registry), CONTENT_TYPE_LATEST


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_metrics_access(request: Request, settings: Settings) -> None:
    """With ADAPTIVE_LTI_METRICS_TOKEN set: the bearer token; unset: loopback callers only."""
    token = settings.metrics_token
    if token is None:
        if _loopback(request.client.host if request.client else None):
            return
        raise PermissionDeniedError(
            "/metrics is served only to the machine the tool runs on, unless a token is set.",
            hint="Set ADAPTIVE_LTI_METRICS_TOKEN on the server and scrape with "
            "'Authorization: Bearer <token>'.",
        )
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        offered.strip().encode(), token.get_secret_value().encode()
    ):
        return
    raise PermissionDeniedError(
        "/metrics needs the metrics token, and this request has no valid one.",
        hint="Send 'Authorization: Bearer <token>' with the value of ADAPTIVE_LTI_METRICS_TOKEN.",
    )


# --- refusals --------------------------------------------------------------------------------

_STEPS = {"/lti/login": "login", "/lti/launch": "launch"}
# Refusal counts reach the database at most once a second per process: without this, a flood
# of forged launches would cost a write transaction each (on PostgreSQL a refusal went from
# about 2 ms to 9 ms) and hold SQLite's one writer away from real launches.
REFUSAL_WRITE_INTERVAL_SECONDS = 1.0


class RefusalTally:
    """Refusals counted in memory between two writes (a process's share, never the truth
    another process needs: the metrics count each refusal at once, the table soon after)."""

    def __init__(self, interval_seconds: float = REFUSAL_WRITE_INTERVAL_SECONDS) -> None:
        self.interval = interval_seconds
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], operations_repo.RefusalBatch] = {}
        self._next_write = 0.0
        self._scheduled: asyncio.Task[None] | asyncio.TimerHandle | None = None

    def add(self, step: str, check: str, message: str, now: datetime) -> bool:
        """Count one; True when it is time to write (the caller then writes ``take()``)."""
        with self._lock:
            earlier = self._pending.get((step, check))
            self._pending[(step, check)] = operations_repo.RefusalBatch(
                step, check, (earlier.count if earlier else 0) + 1, message, now
            )
            due = time.monotonic() >= self._next_write
            if due:
                self._next_write = time.monotonic() + self.interval
            return due

    def take(self) -> list[operations_repo.RefusalBatch]:
        with self._lock:
            pending, self._pending = self._pending, {}
            return list(pending.values())

    def schedule(self, write: Callable[[], Any]) -> None:
        """Write what is left once the interval is over (a burst that then stops)."""
        with self._lock:
            if self._scheduled is not None:
                return
            loop = asyncio.get_running_loop()

            def start() -> None:
                self._scheduled = loop.create_task(write())

            self._scheduled = loop.call_later(self.interval, start)

    def scheduled_done(self) -> None:
        with self._lock:
            self._scheduled = None
            self._next_write = time.monotonic() + self.interval


def _write_refusals(app: FastAPI, batches: list[operations_repo.RefusalBatch]) -> None:
    if not batches:
        return
    try:
        with transaction(app.state.session_factory) as session:
            operations_repo.record_refusals(session, batches)
    except SQLAlchemyError as problem:
        log.warning("refusals could not be counted in the database: %s", problem)


async def launch_refused(request: Request, error: LaunchError) -> None:
    """Count a refused login or launch (metrics and the table 'adaptive-lti status' reads).
    The request's own transaction has been rolled back: the count has a transaction of its
    own, and a database that cannot take it never turns the refusal into an error."""
    step = _STEPS.get(request.url.path, "other")
    code = metrics.refusal_code(error.check)
    metrics.REFUSALS.labels(step=step, check=code).inc()
    if step == "launch":
        metrics.LAUNCHES.labels(outcome="refused").inc()
    app = request.app
    clock: Callable[[], datetime] | None = getattr(app.state, "clock", None)
    now = clock() if clock is not None else datetime.now(UTC)
    tally: RefusalTally = app.state.refusal_tally
    if tally.add(step, code, error.message, now):
        await run_in_threadpool(_write_refusals, app, tally.take())
        return

    async def write_later() -> None:
        try:
            await run_in_threadpool(_write_refusals, app, tally.take())
        finally:
            tally.scheduled_done()

    tally.schedule(write_later)


def install(app: FastAPI, engine: Engine) -> None:
    """The middleware, the pool gauges and the app's own collectors (the outbox)."""
    app.add_middleware(RequestContextMiddleware)
    instrument_pool(engine)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector(app))
    app.state.metrics_registry = registry
    app.state.refusal_tally = RefusalTally()


def app_stopping(app: FastAPI) -> None:
    """At the app's shutdown: the refusals not yet written are written, and this process's
    live-sum gauges (the pool) stop counting. From the lifespan, not atexit: uvicorn's worker
    processes end without running atexit."""
    _write_refusals(app, app.state.refusal_tally.take())
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
