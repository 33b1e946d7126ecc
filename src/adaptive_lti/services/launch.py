"""Use cases of a launch: record what it told us, and read what the instructor's page shows.

Both take the request's session; they flush, never commit (the web dependency commits).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from adaptive_lti.core.errors import NotFoundError
from adaptive_lti.core.lti import CoursePage, LaunchContext, RecordedLaunch
from adaptive_lti.db import launches_repo


def record_launch(
    session: Session,
    launch: LaunchContext,
    *,
    registration_id: int,
    deployment_pk: int,
    now: datetime,
) -> RecordedLaunch:
    """Upsert the user, the course and the activity the launch names, then add the launch:
    the platform's latest names, titles and roles win, earlier launches stay as they were."""
    return launches_repo.record_launch(
        session, launch, registration_id=registration_id, deployment_pk=deployment_pk, now=now
    )


def launch_details(session: Session, launch_id: int) -> LaunchContext:
    """What a recorded launch told the tool: who, which course, which background."""
    found = launches_repo.launch_context(session, launch_id)
    if found is None:
        raise NotFoundError(
            "The launch this session belongs to is no longer recorded (the platform may have "
            "been removed).",
            hint="Open the activity again from your course page.",
        )
    return found


def course_page(
    session: Session, *, context_pk: int | None, resource_link_pk: int | None, limit: int = 20
) -> CoursePage:
    """The course, the activity and the course's recent launches, newest first."""
    return launches_repo.course_page(
        session, context_pk=context_pk, resource_link_pk=resource_link_pk, limit=limit
    )
