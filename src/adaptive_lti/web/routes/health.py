"""Liveness: the cheapest endpoint of the server, also the benchmarks' ceiling."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    # async: nothing here blocks, and a sync handler would pay a threadpool hop (about 2x the
    # cost of the request), which would make it a false ceiling for bench/launch.py.
    return {"status": "ok"}
