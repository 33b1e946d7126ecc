"""A follow-up request names its enrolment; the service serves it only when it is the session's
own learner *and* the session's own activity. Each half of the check has its own test: another
learner's enrolment on the same activity, and the same learner's enrolment on another activity
(SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from adaptive_lti.core.errors import PermissionDeniedError
from adaptive_lti.core.journey import Enrolment
from adaptive_lti.services.journey import reading
from tests.services.test_progress import launch, published_example

Lookup = Callable[..., object]
LOOKUPS: dict[str, Lookup] = {
    "enrolment_for_session": reading.enrolment_for_session,
    "journey_for_session": reading.journey_for_session,
}


@pytest.fixture
def enrolments(session: Session) -> dict[str, Enrolment]:
    """Learner 3 on activities 1 and 2, learner 4 on activity 1."""
    published_example(session)
    return {
        "3@1": launch(session, "3", {"prior_programming": "none"}).enrolment,
        "3@2": launch(session, "3", {"prior_programming": "none"}, resource_link_id="2").enrolment,
        "4@1": launch(session, "4", {"prior_programming": "none"}).enrolment,
    }


def ask(lookup: Lookup, session: Session, named: Enrolment, by: Enrolment) -> object:
    """``by``'s session (their user, their activity) naming ``named``'s enrolment."""
    return lookup(
        session,
        enrolment_id=named.id,
        resource_link_pk=by.resource_link_pk,
        user_pk=by.user_pk,
    )


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_the_sessions_own_enrolment_is_served(
    session: Session, enrolments: dict[str, Enrolment], lookup: Lookup
) -> None:
    for key in ("3@1", "3@2", "4@1"):
        assert ask(lookup, session, enrolments[key], enrolments[key]) is not None


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_another_learners_enrolment_on_the_same_activity_is_refused(
    session: Session, enrolments: dict[str, Enrolment], lookup: Lookup
) -> None:
    mine, theirs = enrolments["3@1"], enrolments["4@1"]
    assert mine.resource_link_pk == theirs.resource_link_pk and mine.user_pk != theirs.user_pk
    with pytest.raises(PermissionDeniedError, match="another learner or another activity"):
        ask(lookup, session, theirs, mine)


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_the_same_learners_enrolment_on_another_activity_is_refused(
    session: Session, enrolments: dict[str, Enrolment], lookup: Lookup
) -> None:
    here, elsewhere = enrolments["3@1"], enrolments["3@2"]
    assert here.user_pk == elsewhere.user_pk and here.resource_link_pk != elsewhere.resource_link_pk
    with pytest.raises(PermissionDeniedError, match="another learner or another activity"):
        ask(lookup, session, elsewhere, here)
