"""The score-delivery worker of an app process: started with the app, stopped with it.

Several app processes may each run one: the outbox claim keeps them from posting a score twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine

from adaptive_lti.core.grading import RetryPolicy
from adaptive_lti.db.session import make_session_factory
from adaptive_lti.lti.ags import AgsClient, open_ags_client
from adaptive_lti.services.grades import ScoreDeliveryWorker
from adaptive_lti.settings import Settings

log = logging.getLogger("adaptive_lti.web.grade_delivery")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RunningScoreDelivery:
    """A started worker and the HTTP client it owns."""

    def __init__(self, worker: ScoreDeliveryWorker, client: AgsClient) -> None:
        self.worker = worker
        self._client = client

    def stop(self) -> None:
        self.worker.stop()
        self._client.close()


def start_score_delivery(
    settings: Settings,
    engine: Engine,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
) -> RunningScoreDelivery | None:
    """Start delivering queued scores in the background, unless the settings turn it off.

    The worker gets sessions of its own on ``engine`` (never the request sessions: it runs in
    another thread), and only ever sees committed scores.
    """
    if not settings.grade_delivery_worker:
        log.info("score delivery worker is off (ADAPTIVE_LTI_GRADE_DELIVERY_WORKER=false)")
        return None
    session_factory = make_session_factory(engine)
    client = open_ags_client(session_factory, transport)
    worker = ScoreDeliveryWorker(
        session_factory,
        client,
        interval=settings.grade_delivery_interval_seconds,
        policy=RetryPolicy(max_attempts=settings.grade_delivery_max_attempts),
        # The app's clock (tests may move it): scores are due by the clock that queued them.
        clock=clock,
    )
    worker.start()
    return RunningScoreDelivery(worker, client)
