"""The instructor's activity page after Moodle launches (issue 8), through the app on SQLite and
PostgreSQL: it says when the platform does not accept grades from the activity, and its recent
launches are this activity's, labelled so."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.design_samples import NOW, publish_example
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import INSTRUCTOR, LTI

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        publish_example(lti.session_factory, now=NOW)
        yield lti


def activity(
    link_id: str = "1",
    title: str = "Week 1 path",
    ags: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[dict[str, Any]], None]:
    def mutate(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"]["design"] = "intro-programming"
        claims[LTI + "resource_link"] = {"id": link_id, "title": title}
        if ags is not None:
            ags(claims)

    return mutate


def instructor_text(h: LtiHarness, mutate: Callable[[dict[str, Any]], None]) -> str:
    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=mutate)
    assert response.status_code == 200, response.text
    return " ".join(html.unescape(response.text).split())


def no_lineitem(claims: dict[str, Any]) -> None:
    # Moodle's "Accept grades from the tool: Delegate to teacher", the activity's box unticked.
    claims[AGS].pop("lineitem", None)
    claims[AGS]["lineitems"] = (
        "https://moodle.example.edu/mod/lti/services.php/2/lineitems?type_id=1"
    )


def no_ags(claims: dict[str, Any]) -> None:
    claims.pop(AGS, None)


def test_the_page_says_when_the_platform_keeps_no_grade_column_for_the_activity(
    h: LtiHarness,
) -> None:
    text = instructor_text(h, activity(ags=no_lineitem))
    assert "The platform does not accept grades from this activity" in text
    assert "Accept grades from the tool" in text
    assert "column of its own named 'Week 1 path'" in text


def test_the_page_says_when_the_platform_offers_no_grade_service(h: LtiHarness) -> None:
    text = instructor_text(h, activity(ags=no_ags))
    assert "The platform does not accept grades from this activity" in text
    assert "no grades are sent" in text


def test_an_activity_with_its_own_column_has_no_warning(h: LtiHarness) -> None:
    text = instructor_text(h, activity())
    assert "does not accept grades" not in text


def test_recent_launches_are_this_activitys_and_say_so(h: LtiHarness) -> None:
    def other_person(claims: dict[str, Any]) -> None:
        activity("2", "Week 2 path")(claims)
        claims["name"] = "Somebody Elsewhere"
        claims["given_name"], claims["family_name"] = "Somebody", "Elsewhere"

    assert h.full_launch(subject="7", mutate=other_person).status_code == 200
    text = instructor_text(h, activity())
    assert "Recent launches of this activity" in text
    assert "Somebody Elsewhere" not in text
    assert "1 launch by 1 person" in text  # the instructor's own, in Week 1 path only
