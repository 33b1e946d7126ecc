"""Through the app: a learner's form names its enrolment, and the tool session that comes with it
must be that learner's *on that activity*. The same learner's session from another activity is
refused like another learner's, and neither writes anything (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lti.harness import LtiHarness
from tests.lti.scripted_platform import LTI
from tests.web.test_journey_pages import form_at

# The journey pages' harness (a fixture, used by name): the example design in the sample tenant.
from tests.web.test_journey_pages import h as h


def on_activity(resource_link_id: str) -> Any:
    def mutate(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"] = {"design": "intro-programming", "prior_programming": "none"}
        claims[LTI + "resource_link"] = {"id": resource_link_id, "title": "Activity"}

    return mutate


@pytest.mark.parametrize(
    ("subject", "activity"),
    [("99", "1"), ("3", "2")],
    ids=["another learner, same activity", "same learner, another activity"],
)
def test_a_session_that_is_not_the_forms_own_is_refused(
    h: LtiHarness, subject: str, activity: str
) -> None:
    page = h.full_launch(mutate=on_activity("1"), subject="3")
    intake = form_at(page, "/journey/intake")
    other = h.full_launch(mutate=on_activity(activity), subject=subject)
    other_token = form_at(other, "/journey/intake").fields["tool_session"]
    assert other_token != intake.fields["tool_session"]
    h.client.cookies.clear()
    h.mark()
    refused = h.client.post(
        intake.action,
        data={**intake.fields, "tool_session": other_token, "attribute-goal": "interest"},
    )
    assert refused.status_code == 403
    assert "another learner or another activity" in refused.text
    assert h.unchanged_since_mark()
    # The form's own session is still served.
    accepted = h.client.post(intake.action, data={**intake.fields, "attribute-goal": "interest"})
    assert accepted.status_code == 200, accepted.text
