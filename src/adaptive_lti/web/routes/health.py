"""Liveness (``/healthz``: the process answers, nothing else is touched), readiness (``/readyz``:
the database answers and its schema is the one this code needs) and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from adaptive_lti.db import migrate
from adaptive_lti.web import observability
from adaptive_lti.web.deps import SettingsDep

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    # async: nothing here blocks, and a sync handler would pay a threadpool hop (about 2x the
    # cost of the request), which would make it a false ceiling for bench/launch.py.
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    """200 when the tool can serve requests; 503 with the reason when it cannot (a load
    balancer sends no traffic there until the database is back or migrated)."""
    problem = migrate.database_problem(request.app.state.session_factory)
    if problem is not None:
        return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus text format; docs/operators/observability.md says who may read it."""
    observability.require_metrics_access(request, settings)
    body, content_type = observability.render_metrics(request.app)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
