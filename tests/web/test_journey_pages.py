"""The learner's pages through the app (TestClient, scripted platform, SQLite and PostgreSQL):
the page of an activity with no design, form errors that keep the learner's input and write
nothing, stale pages, choice counts, sessions that do not fit the page, hostile field values,
escaped Markdown and the launch's locale. Never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import LearnerEvent
from adaptive_lti.services import design_publishing
from tests.design_samples import by, publish_example, tenant
from tests.e2e.conftest import Form, forms_of
from tests.e2e.journey_walker import JourneyWalker, Persona, current_activity, example_design
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import LTI


class AppBrowser:
    """What JourneyWalker needs from a browser, over the app's TestClient."""

    def __init__(self, h: LtiHarness) -> None:
        self.h = h

    def submit(self, form: Form, **fields: str) -> httpx.Response:
        data = {**form.fields, **fields}
        return self.h.client.post(form.action, data=data, follow_redirects=True)

    def request(self, method: str, url: str, **_: Any) -> httpx.Response:
        return self.h.client.request(method, url, follow_redirects=True)


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        publish_example(lti.session_factory, now=lti.clock.now)
        yield lti


def custom(values: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    def mutate(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"] = {"design": "intro-programming", **values}

    return mutate


def event_count(h: LtiHarness) -> int:
    with h.session_factory() as session:
        return session.scalar(select(func.count()).select_from(LearnerEvent)) or 0


def form_at(page: httpx.Response, path: str) -> Form:
    for form in forms_of(page):
        if form.action.endswith(path):
            return form
    raise AssertionError(f"no form posting to {path}:\n{page.text[:2000]}")


def test_an_activity_with_no_design_tells_the_learner(h: LtiHarness) -> None:
    page = h.full_launch()
    assert page.status_code == 200
    assert "has not attached a design" in page.text
    assert event_count(h) == 0


def test_an_activity_naming_an_unpublished_design_is_not_ready_with_a_message(
    h: LtiHarness,
) -> None:
    def unknown(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"] = {"design": "no-such-design"}

    page = h.full_launch(mutate=unknown)
    assert page.status_code == 200
    assert "not ready yet" in page.text and "no-such-design" in page.text
    assert event_count(h) == 0


def test_missing_intake_answer_keeps_what_was_given_and_records_nothing(h: LtiHarness) -> None:
    page = h.full_launch(mutate=custom({}))  # nothing known: both questions asked
    form = form_at(page, "/journey/intake")
    before = event_count(h)
    refused = h.client.post(form.action, data={**form.fields, "attribute-goal": "academic"})
    assert refused.status_code == 422
    assert "Please answer every question" in refused.text
    assert 'value="academic" required checked' in refused.text
    assert event_count(h) == before
    accepted = h.client.post(
        form.action,
        data={**form.fields, "attribute-goal": "academic", "attribute-prior_programming": "some"},
    )
    assert accepted.status_code == 200 and current_activity(accepted) == "diagnostic"


def test_no_option_picked_and_stale_pages_are_explained(h: LtiHarness) -> None:
    page = h.full_launch(mutate=custom({"prior_programming": "none"}))
    intake = form_at(page, "/journey/intake")
    page = h.client.post(intake.action, data={**intake.fields, "attribute-goal": "interest"})
    question = form_at(page, "/journey/answer")
    before = event_count(h)
    empty = h.client.post(question.action, data=question.fields)
    assert empty.status_code == 422 and "Please pick an answer" in empty.text
    assert event_count(h) == before
    answered = h.client.post(question.action, data={**question.fields, "choice": "1"})
    assert answered.status_code == 200 and (
        "Correct" in answered.text or "Not quite" in answered.text
    )
    # The same question again from the old page (another tab): refused, the current page shown.
    stale = h.client.post(question.action, data={**question.fields, "choice": "0"})
    assert stale.status_code == 409
    assert "out of date" in stale.text
    assert event_count(h) == before + 1
    # And the old intake page, posted again, does not overwrite the answer either.
    again = h.client.post(intake.action, data={**intake.fields, "attribute-goal": "academic"})
    assert again.status_code == 409


def test_wrong_number_of_choices_is_refused_with_the_rule(h: LtiHarness) -> None:
    page = h.full_launch(mutate=custom({"prior_programming": "experienced"}))
    ben = Persona("ben", "3", {"goal": "vocational"}, {"diagnostic": [6]}, "elective-data")
    walker = JourneyWalker(AppBrowser(h), example_design())  # type: ignore[arg-type]
    page = walker.walk(ben, page, until="diagnostic")  # fast track: the choice comes next
    choose = form_at(page, "/journey/choose")
    before = event_count(h)
    both = h.client.post(
        choose.action,
        data={**choose.fields, "picked": ["elective-data", "elective-web"]},
    )
    assert both.status_code == 422
    assert "Please pick exactly 1 option; you picked 2." in both.text
    none = h.client.post(choose.action, data=choose.fields)
    assert none.status_code == 422 and "you picked 0" in none.text
    alien = h.client.post(choose.action, data={**choose.fields, "picked": "project"})
    assert alien.status_code == 422 and "not offered here" in alien.text
    assert event_count(h) == before
    chosen = h.client.post(choose.action, data={**choose.fields, "picked": "elective-data"})
    assert chosen.status_code == 200 and current_activity(chosen) == "elective-data"


def test_requests_without_the_learners_session_are_refused(h: LtiHarness) -> None:
    page = h.full_launch(mutate=custom({"prior_programming": "none"}))
    intake = form_at(page, "/journey/intake")
    h.client.cookies.clear()
    without = h.client.post(
        intake.action,
        data={k: v for k, v in intake.fields.items() if k != "tool_session"}
        | {"attribute-goal": "interest"},
    )
    assert without.status_code == 403
    # Another learner's session, naming this learner's enrolment.
    other = h.full_launch(mutate=custom({"prior_programming": "none"}), subject="99")
    other_token = form_at(other, "/journey/intake").fields["tool_session"]
    h.client.cookies.clear()
    foreign = h.client.post(
        intake.action,
        data={**intake.fields, "tool_session": other_token, "attribute-goal": "interest"},
    )
    assert foreign.status_code == 403
    assert "another learner" in foreign.text


@pytest.mark.parametrize(
    "fields",
    [
        {"enrolment": "not-a-number", "seq": "x"},
        {"enrolment": "999999", "seq": "0"},
        {"seq": "-5", "activity": "<script>", "attribute-goal": "x" * 5000},
        {"activity": "diagnostic", "question": "nope", "choice": "abc"},
    ],
)
def test_hostile_field_values_never_give_a_500(h: LtiHarness, fields: dict[str, str]) -> None:
    page = h.full_launch(mutate=custom({"prior_programming": "none"}))
    intake = form_at(page, "/journey/intake")
    for path in ("/journey/intake", "/journey/answer", "/journey/complete", "/journey/choose"):
        response = h.client.post(path, data={**intake.fields, **fields})
        assert response.status_code in {403, 404, 409, 422}, (path, response.text[:500])
        assert "<script>" not in response.text.replace("&lt;script&gt;", "")


def test_progress_page_locale_and_frame_resize(h: LtiHarness) -> None:
    def portuguese(claims: dict[str, Any]) -> None:
        custom({"prior_programming": "some"})(claims)
        claims[LTI + "launch_presentation"]["locale"] = "pt_br"

    page = h.full_launch(mutate=portuguese)
    assert '<html lang="pt-BR">' in page.text
    assert "journey.js" in page.text
    token = form_at(page, "/journey/intake").fields["tool_session"]
    progress = h.client.get(f"/journey/progress?tool_session={token}")
    assert progress.status_code == 200
    assert "Why am I on this route?" in progress.text
    assert 'aria-current="step"' in progress.text
    assert "0%" in progress.text


MINI = """\
design: mini-kinds
title: Mini kinds
activities:
  read: {kind: link, title: Read the guide, url: "https://example.org/guide"}
  think: {kind: reflection, title: Reflect, prompt: "What did *you* learn?"}
  note: {kind: page, title: Note, body: "Hello <script>alert(1)</script> **bold**"}
route: [read, think, note]
"""


def test_links_reflections_and_pages_complete_and_markdown_is_escaped(h: LtiHarness) -> None:
    with transaction(h.session_factory) as session:
        design_publishing.publish_design(
            session, tenant(session), MINI, "mini.yaml", by("tests"), now=h.clock.now
        )

    def mini(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"] = {"design": "mini-kinds"}

    page = h.full_launch(mutate=mini)
    assert current_activity(page) == "read"
    assert 'href="https://example.org/guide" target="_blank" rel="noopener noreferrer"' in page.text
    page = _post(h, *_submit(form_at(page, "/journey/complete")))
    assert current_activity(page) == "think" and "<em>you</em>" in page.text
    reflection = form_at(page, "/journey/complete")
    empty = _post(h, *_submit(reflection, text="   "))
    assert empty.status_code == 422 and "Please write your reflection" in empty.text
    page = _post(h, *_submit(reflection, text="Loops repeat things."))
    assert current_activity(page) == "note"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert "<strong>bold</strong>" in page.text
    done = _post(h, *_submit(form_at(page, "/journey/complete")))
    assert 'data-kind="completed"' in done.text
    with h.session_factory() as session:
        notes = session.scalars(select(LearnerEvent.note).where(LearnerEvent.note.is_not(None)))
        assert list(notes) == ["Loops repeat things."]


def _post(h: LtiHarness, action: str, data: dict[str, str]) -> httpx.Response:
    return h.client.post(action, data=data)


def _submit(form: Form, **fields: str) -> tuple[str, dict[str, str]]:
    return form.action, {**form.fields, **fields}


def test_a_learner_post_carrying_only_the_session_cookie_is_refused(h: LtiHarness) -> None:
    """A form another site posts into the learner's browser carries the cookie but not the
    token of the tool's page: it records nothing (the same form with the token does)."""
    page = h.full_launch(mutate=custom({"prior_programming": "none"}))
    intake = form_at(page, "/journey/intake")
    assert h.client.cookies.get("adaptive_lti_session")
    before = event_count(h)
    forged = {k: v for k, v in intake.fields.items() if k != "tool_session"}
    refused = h.client.post(intake.action, data=forged | {"attribute-goal": "interest"})
    assert refused.status_code == 403
    assert "Reopen the activity from your course" in refused.text
    assert event_count(h) == before
    genuine = h.client.post(intake.action, data={**intake.fields, "attribute-goal": "interest"})
    assert genuine.status_code == 200, genuine.text
    assert event_count(h) > before
