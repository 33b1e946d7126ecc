"""The single place where errors become HTTP answers: an HTML page, or JSON when asked for.

Every answer names what went wrong and what to do, carries a correlation id that is also logged,
and never shows a traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from adaptive_lti.core.errors import AdaptiveLtiError, DesignError, LaunchError
from adaptive_lti.db.session import DatabaseBusyError
from adaptive_lti.web import observability
from adaptive_lti.web.templating import templates

log = logging.getLogger("adaptive_lti.web")


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(
    request: Request,
    status_code: int,
    title: str,
    message: str,
    hint: str = "",
    extra: dict[str, Any] | None = None,
) -> Response:
    # The request's id (X-Request-ID), so the page, the response header and the logs agree.
    correlation_id = observability.current_request_id() or uuid.uuid4().hex[:12]
    log.warning(
        "%s %s -> %s %s: %s [correlation_id=%s]",
        request.method,
        request.url.path,
        status_code,
        title,
        message,
        correlation_id,
    )
    body: dict[str, Any] = {
        "error": title,
        "message": message,
        "hint": hint,
        "correlation_id": correlation_id,
        **(extra or {}),
    }
    if wants_json(request):
        return JSONResponse(body, status_code=status_code)
    return templates.TemplateResponse(
        request, "error.html", {"status_code": status_code, **body}, status_code=status_code
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdaptiveLtiError)
    extra: dict[str, Any] = {}
    title = "Request refused"
    if isinstance(exc, LaunchError):
        title = f"Launch refused: {exc.check}"
        if exc.status_code == 503:
            title = f"Launch not checked: {exc.check}"
        extra["check"] = exc.check
        await observability.launch_refused(request, exc)
    elif isinstance(exc, DesignError):
        title = "The design has problems"
        extra["problems"] = [str(p) for p in exc.problems]
    elif isinstance(exc, DatabaseBusyError):
        title = "The tool is busy"
    response = error_response(request, exc.status_code, title, exc.message, exc.hint, extra)
    if exc.status_code == 503:
        # Both 503s (platform keys, database connections) pass in seconds to a minute.
        response.headers["Retry-After"] = "5"
    return response


async def _pool_timeout(request: Request, exc: Exception) -> Response:
    """A connection wanted outside the request's admission (``web/deps.py``) timed out."""
    assert isinstance(exc, PoolTimeoutError)
    log.warning("database pool timeout on %s %s: %s", request.method, request.url.path, exc)
    timeout = request.app.state.settings.db_pool_timeout_seconds
    return await _domain_error(request, DatabaseBusyError(timeout))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        fields.append(f"{where}: {error.get('msg', 'invalid')}")
    return error_response(
        request,
        422,
        "Invalid request",
        "The request is missing fields or has fields of the wrong type: " + "; ".join(fields),
        "Check the form or payload and send it again.",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {
        404: ("Not found", "There is nothing at this address.", "Check the link you followed."),
        405: (
            "Method not allowed",
            f"This address does not accept {request.method} requests.",
            "Open it from the tool or your course page instead.",
        ),
    }
    title, message, hint = messages.get(exc.status_code, ("Request refused", str(exc.detail), ""))
    response = error_response(request, exc.status_code, title, message, hint)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


# Seconds a client is told to wait after a 503 (a database restart takes a few).
DATABASE_RETRY_AFTER_SECONDS = 10


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """The database went away (restart, failover, network) or refused a connection: the
    transaction was rolled back, so nothing was saved; the pool reconnects on its own."""
    assert isinstance(exc, OperationalError | InterfaceError)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, reason)
    response = error_response(
        request,
        503,
        "Database unavailable",
        "The tool cannot reach its database at the moment, so nothing was saved.",
        "Try again in a minute. If it keeps happening, tell the administrator: the tool's log "
        "says why the database cannot be reached.",
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        request,
        500,
        "Internal error",
        "Something went wrong inside the tool; nothing was saved.",
        "Try again; if it keeps happening, give the administrator the correlation id.",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(AdaptiveLtiError, _domain_error)
    app.add_exception_handler(PoolTimeoutError, _pool_timeout)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
