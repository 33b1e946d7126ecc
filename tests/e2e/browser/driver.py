"""Playing the demo course in the browser: open the course page with the tool embedded, and walk a
learner's journey by what the page shows (intake, check questions, pages, choices) the way a
person would, clicking labels and buttons. Answers come from the example design itself."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from playwright.sync_api import Frame, Locator, Page

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "intro-programming" / "design.yaml"
FRAME_NAME = "contentframe"


@cache
def right_answers() -> dict[str, int]:
    """Question id -> index of its right answer, from the example design."""
    design: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    answers: dict[str, int] = {}
    for activity in design["activities"].values():
        for question in activity.get("questions", ()):
            answers[question["id"]] = [str(c) for c in question["choices"]].index(
                str(question["answer"])
            )
    return answers


def open_embedded(page: Page, person: str) -> Frame:
    """The demo course page as ``person``; returns the tool's frame once the launch is done."""
    page.goto(f"/demo-platform/course/{person}")
    frame = page.frame(name=FRAME_NAME)
    assert frame is not None, "the course page has no tool frame"
    frame.wait_for_url(re.compile(r"/lti/launch$"))
    frame.wait_for_load_state()
    return frame


def press(frame: Frame, target: Locator) -> None:
    """Click something that loads a new page in the frame, and wait for that page."""
    with frame.expect_navigation():
        target.click()
    frame.wait_for_load_state()


@dataclass
class Plan:
    """What a persona answers: intake values, how many questions right per check attempt (the
    first ``n`` right, the others wrong; absent: all right), and the elective."""

    intake: dict[str, str]
    right: dict[str, list[int]] = field(default_factory=dict)
    elective: str = "elective-games"
    met: list[str] = field(default_factory=list)


def step(frame: Frame, plan: Plan) -> bool:
    """Do what the current page asks once; False when the journey is finished."""
    if frame.locator("[data-kind='completed']").count():
        return False
    intake = frame.locator("form[action$='/journey/intake']")
    if intake.count():
        plan.met.append("intake")
        for attribute, value in plan.intake.items():
            radio = intake.locator(f"input[name='attribute-{attribute}'][value='{value}']")
            if radio.count():
                frame.locator(f"label[for='{radio.get_attribute('id')}']").click()
        press(frame, intake.get_by_role("button", name="Continue"))
        return True
    choose = frame.locator("form[action$='/journey/choose']")
    if choose.count():
        plan.met.append(f"choose:{plan.elective}")
        picked = choose.locator(f"input[name='picked'][value='{plan.elective}']")
        frame.locator(f"label[for='{picked.get_attribute('id')}']").click()
        press(frame, choose.get_by_role("button", name="Confirm my choice"))
        return True
    question = frame.locator("form[action$='/journey/answer']")
    if question.count():
        activity = question.locator("input[name='activity']").get_attribute("value") or ""
        question_id = question.locator("input[name='question']").get_attribute("value") or ""
        legend = question.locator("legend .muted").inner_text()
        number = int(re.search(r"Question (\d+) of", legend).group(1))  # type: ignore[union-attr]
        if number == 1:
            plan.met.append(activity)
        attempts = plan.right.get(activity, [])
        right = attempts[0] if attempts else 99
        good = right_answers()[question_id]
        choices = question.locator("input[name='choice']").count()
        pick = good if number <= right else (good + 1) % choices
        frame.locator(f"label[for='choice-{pick}']").click()
        press(frame, question.get_by_role("button", name="Submit answer"))
        if frame.locator(".feedback .score").count() and attempts:
            attempts.pop(0)  # this attempt is over
        return True
    go_on = frame.locator("button[data-continue]")
    if go_on.count():
        press(frame, go_on)
        return True
    article = frame.locator("article[data-activity]")
    if article.count():
        plan.met.append(article.get_attribute("data-activity") or "")
        button = article.locator("button[type='submit']")
        press(frame, button)
        return True
    raise AssertionError("the learner's page offers nothing to do:\n" + frame.content()[:3000])


def walk(frame: Frame, plan: Plan, *, until: str | None = None, limit: int = 150) -> Plan:
    """Follow the journey to its end, or until the page shows activity ``until``."""
    for _ in range(limit):
        if until is not None and frame.locator(f"[data-activity='{until}']").count():
            return plan
        if not step(frame, plan):
            return plan
    raise AssertionError(f"the journey did not end within {limit} pages: {plan.met}")
