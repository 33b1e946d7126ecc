"""Plays a learner through the tool's journey pages over HTTP, the way a person with a browser
does: read the page, fill in its form, press its button. Answers are chosen from the example
design (right or wrong on purpose, to get the scores a persona is scripted to get).

``JourneyWalker.walk`` returns each step the learner met (activity ids, ``choose:<picked>``)
so tests can assert the exact route.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.design import Check
from adaptive_lti.core.loader import load_design_file
from adaptive_lti.db.session import normalise_database_url
from tests.e2e.conftest import DemoPlatformClient, forms_of, path_of

EXAMPLE_DESIGN = (
    Path(__file__).resolve().parents[2] / "examples" / "intro-programming" / "design.yaml"
)
ATTRIBUTE_FIELD = re.compile(r'name="attribute-([a-z0-9_-]+)"')


def example_design() -> CompiledDesign:
    return load_design_file(EXAMPLE_DESIGN)


@dataclass
class Persona:
    """What a scripted learner answers: intake values, how many questions of each attempt at a
    check they get right (in order; unlisted attempts are all right), the elective they pick."""

    key: str
    user_id: str
    intake: dict[str, str]
    right: dict[str, list[int]]
    elective: str
    met: list[str] = field(default_factory=list)


class JourneyWalker:
    def __init__(self, client: DemoPlatformClient, design: CompiledDesign) -> None:
        self.client = client
        self.design = design
        self.answered_in_attempt: dict[str, int] = {}

    def _answer_index(self, persona: Persona, activity: str, question_id: str) -> int:
        check = self.design.design.activities[activity]
        assert isinstance(check, Check)
        question = next(q for q in check.questions if q.id == question_id)
        good = question.choices.index(question.answer)
        number = self.answered_in_attempt.get(activity, 0)
        attempts = persona.right.get(activity) or []
        right = attempts[0] if attempts else len(check.questions)
        return good if number < right else (good + 1) % len(question.choices)

    def step(self, persona: Persona, page: httpx.Response) -> httpx.Response | None:
        """One action on ``page``; None when the page is the end of the course."""
        assert page.status_code == 200, f"{page.status_code}: {page.text[:2000]}"
        if 'data-kind="completed"' in page.text:
            return None
        forms = {path_of(form.action): form for form in forms_of(page)}
        if "/journey/intake" in forms:
            form = forms["/journey/intake"]
            asked = ATTRIBUTE_FIELD.findall(page.text)
            persona.met.append(form.fields["activity"])
            answers = {f"attribute-{name}": persona.intake[name] for name in dict.fromkeys(asked)}
            return self.client.submit(form, **answers)
        if "/journey/answer" in forms:
            form = forms["/journey/answer"]
            activity, question = form.fields["activity"], form.fields["question"]
            number = self.answered_in_attempt.get(activity, 0)
            if number == 0:
                persona.met.append(activity)
            choice = self._answer_index(persona, activity, question)
            response = self.client.submit(form, choice=str(choice))
            check = self.design.design.activities[activity]
            assert isinstance(check, Check)
            if number + 1 == len(check.questions):
                self.answered_in_attempt[activity] = 0
                if persona.right.get(activity):
                    persona.right[activity].pop(0)
            else:
                self.answered_in_attempt[activity] = number + 1
            return response
        if "/journey/choose" in forms:
            persona.met.append(f"choose:{persona.elective}")
            return self.client.submit(forms["/journey/choose"], picked=persona.elective)
        if "/journey/complete" in forms:
            form = forms["/journey/complete"]
            persona.met.append(form.fields["activity"])
            return self.client.submit(form)
        # "Continue" posts the session in a form (the token stays out of URLs).
        for form in forms_of(page):
            if any("data-continue" in button for button in form.buttons):
                return self.client.submit(form)
        raise AssertionError(f"no way forward on the page:\n{page.text[:3000]}")

    def walk(
        self, persona: Persona, page: httpx.Response, *, until: str | None = None
    ) -> httpx.Response:
        """Follow the pages to the end of the course (or until ``until`` was just done)."""
        for _ in range(200):
            following = self.step(persona, page)
            if following is None:
                return page
            page = following
            if (
                until is not None
                and persona.met
                and persona.met[-1] == until
                and self.answered_in_attempt.get(until, 0) == 0
            ):
                return page
        raise AssertionError(f"the walk did not end: {persona.met}")


def current_activity(page: httpx.Response) -> str | None:
    """The activity the page shows (a form's hidden ``activity`` or the article's id)."""
    match = re.search(r'data-activity="([^"]+)"', page.text)
    if match:
        return match.group(1)
    match = re.search(r'name="activity" value="([^"]+)"', page.text)
    return match.group(1) if match else None


def queued_scores(database_url: str, user_id: str) -> list[dict[str, object]]:
    """The score payloads queued for a learner, oldest first (read straight from the outbox)."""
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT payload, status FROM lti_score_outbox WHERE user_sub = :sub ORDER BY id"
                ),
                {"sub": user_id},
            ).all()
    finally:
        engine.dispose()
    return [
        {**(row[0] if isinstance(row[0], dict) else json.loads(row[0])), "status": row[1]}
        for row in rows
    ]


def snapshot_flags(database_url: str, user_id: str) -> tuple[bool, str | None]:
    """(needs help, route) of the learner's snapshot."""
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT s.needs_help, s.route FROM learner_snapshot s "
                    "JOIN learner_enrolment e ON e.id = s.enrolment_id WHERE e.user_sub = :sub"
                ),
                {"sub": user_id},
            ).one()
    finally:
        engine.dispose()
    return bool(row[0]), row[1]


def delivered_grade(
    server_data_dir: Path, database_url: str, user_id: str, *, timeout: float = 30.0
) -> dict[str, object]:
    """Wait for the tool's worker to deliver the learner's last score, then read the demo
    platform's gradebook (its JSON file): the result it holds for the learner."""
    deadline = time.monotonic() + timeout
    while True:
        scores = queued_scores(database_url, user_id)
        if scores and scores[-1]["status"] == "delivered":
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the last score of {user_id} was not delivered: {scores}")
        time.sleep(0.25)
    gradebook = json.loads((server_data_dir / "demo-platform-gradebook.json").read_text())
    results = [
        result
        for per_item in gradebook["results"].values()
        for uid, result in per_item.items()
        if uid == user_id
    ]
    assert len(results) == 1, gradebook
    delivered: dict[str, object] = results[0]
    return delivered
