"""The tool in a real browser, framed in the demo platform's course page the way Moodle embeds it:
a learner played from first launch through intake, checks and a choice to a grade; the
instructor's page showing each learner's place; an override that moves a learner, seen by the
learner at their next launch. Checks are on the DOM; screenshots are kept for people to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Frame, Page, expect

from tests.e2e.browser.driver import Plan, open_embedded, press, walk

pytestmark = pytest.mark.browser


def fits_the_frame(page: Page, frame: Frame) -> None:
    """The tool's page is no wider than its frame (nothing to scroll sideways) and the frame was
    fitted to the page's height (the lti.frameResize message)."""
    width = frame.evaluate("document.documentElement.scrollWidth")
    client = frame.evaluate("document.documentElement.clientWidth")
    assert width <= client + 1, f"the page is {width}px wide in a {client}px frame"
    page.wait_for_function(
        "() => { const f = document.getElementById('contentframe');"
        " return f.style.height !== '' && parseInt(f.style.height) >= 300; }"
    )


def test_a_learner_plays_the_course_to_a_grade(page: Page, screenshots: Path) -> None:
    frame = open_embedded(page, "ana")
    expect(page.locator("h1")).to_have_text("Adaptive programming path")
    # Ana's background came from the platform; the intake asks only for her goal.
    expect(frame.locator("form[action$='/journey/intake'] legend")).to_have_count(1)
    page.screenshot(path=screenshots / "learner-intake.png", full_page=True)
    plan = Plan(intake={"goal": "interest"}, right={"diagnostic": [1], "project": [4]})
    walk(frame, plan, until="variables-lesson")
    expect(frame.locator("[data-activity='variables-lesson']")).to_be_visible()
    assert "foundations" in frame.locator("main").inner_text()
    fits_the_frame(page, frame)
    walk(frame, plan)
    assert plan.met[:3] == ["intake", "diagnostic", "variables-lesson"]
    assert "choose:elective-games" in plan.met and plan.met[-1] == "project"
    done = frame.locator("[data-kind='completed']")
    expect(done).to_contain_text("Well done")
    expect(done.locator(".final-grade")).to_contain_text("80")
    expect(done).to_contain_text("foundations")
    page.screenshot(path=screenshots / "learner-finished.png", full_page=True)
    # The score reaches the platform's gradebook (the delivery worker posts it within seconds).
    for _ in range(40):
        page.goto("/demo-platform/gradebook")
        row = page.locator("tr", has=page.get_by_role("rowheader", name="Ana Alves"))
        if "80" in row.inner_text():
            break
        page.wait_for_timeout(500)
    expect(row.locator("td").first).to_contain_text("80")


def test_the_instructor_sees_who_needs_help(page: Page, screenshots: Path) -> None:
    # Dara has never programmed and fails the loops check three times: after two remedial rounds
    # the design sends her to support material and flags her for the instructor.
    learner = open_embedded(page, "dara")
    plan = Plan(
        intake={"goal": "academic"},
        right={"diagnostic": [2], "loops-check": [1, 1, 1], "project": [3]},
    )
    walk(learner, plan)
    assert plan.met.count("loops-check") == 3 and "loops-support" in plan.met

    tool = open_embedded(page, "irene")
    row = tool.locator("tr[data-learner='6']")
    expect(row).to_have_class("needs-help")
    expect(row.locator(".flag")).to_contain_text("needs help")
    summary = tool.locator("section[aria-labelledby='learners-title'] > p").first
    expect(summary).to_contain_text("1 needs help")
    expect(summary.get_by_role("link", name="Dara Doyle")).to_be_visible()

    press(tool, tool.get_by_role("link", name="Who took which route"))
    foundations = tool.locator("table.routes").first.locator(
        "tr", has=tool.get_by_role("rowheader", name="foundations")
    )
    expect(foundations.locator("td").nth(3)).to_have_text("1")  # need help
    page.screenshot(path=screenshots / "instructor-routes.png", full_page=True)


def test_the_instructor_sees_places_and_moves_a_learner(page: Page, screenshots: Path) -> None:
    # Chen (some programming, 4 of 6 in the diagnostic) reaches the standard route's first lesson.
    learner = open_embedded(page, "chen")
    walk(
        learner,
        Plan(intake={"goal": "academic"}, right={"diagnostic": [4]}),
        until="conditionals-lesson",
    )

    tool = open_embedded(page, "irene")
    expect(tool.locator("h2#learners-title")).to_have_text("Learners and where they are")
    row = tool.locator("tr[data-learner='5']")
    expect(row).to_contain_text("Chen Chen")
    expect(row.locator("td.place")).to_contain_text("Conditionals")
    expect(row).to_contain_text("standard")
    # Gabi never launched; she is listed once the roster is synced from the platform.
    press(tool, tool.get_by_role("button", name="Sync the roster from the platform"))
    expect(tool.get_by_role("status")).to_contain_text("Roster synced")
    expect(tool.locator("tr[data-learner='9'] td.place")).to_have_text(
        "Never launched the activity"
    )
    fits_the_frame(page, tool)
    page.screenshot(path=screenshots / "instructor-learners.png", full_page=True)

    press(tool, row.get_by_role("link", name="Chen Chen"))
    expect(tool.locator("h1#learner-title")).to_have_text("Chen Chen")
    trace = tool.locator("ol.trace")
    expect(trace).to_contain_text("diagnostic.score")
    expect(trace).to_contain_text("standard")
    tool.get_by_label("Move to").select_option("route:foundations")
    tool.get_by_label("Why (required)").first.fill("Needs the basics of variables first")
    press(tool, tool.get_by_role("button", name="Move the learner"))
    expect(tool.get_by_role("status")).to_contain_text("the learner was moved")
    expect(tool.locator("dl.facts .place")).to_contain_text("Variables")
    expect(trace).to_contain_text("Moved to route foundations by Irene Ibsen")
    page.screenshot(path=screenshots / "instructor-learner.png", full_page=True)

    # Chen's next launch shows where the instructor put him; his progress page says why.
    learner = open_embedded(page, "chen")
    expect(learner.locator("article[data-activity='variables-lesson']")).to_be_visible()
    press(learner, learner.get_by_role("button", name="Your progress and route"))
    expect(learner.locator("section[aria-labelledby='why-title']")).to_contain_text(
        "because your instructor put you on it: Needs the basics of variables first"
    )


def test_the_embedded_pages_break_no_content_security_policy(page: Page) -> None:
    """The course page with the tool framed, a learner's first steps and the instructor's pages
    run under the tool's CSP (no inline script or style, frame-ancestors) without one violation
    in the browser's console, and the console check does see a violation when there is one."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    policies: dict[str, str] = {}
    page.on(
        "response",
        lambda response: policies.setdefault(
            response.url.split("?")[0], response.headers.get("content-security-policy", "")
        ),
    )
    learner = open_embedded(page, "femi")
    walk(learner, Plan(intake={"goal": "interest"}, right={"diagnostic": [6]}), until="diagnostic")
    press(learner, learner.get_by_role("button", name="Your progress and route"))
    instructor = open_embedded(page, "irene")
    press(instructor, instructor.get_by_role("link", name="Who took which route"))
    press(instructor, instructor.get_by_role("button", name="Design: upload or change"))
    expect(instructor.locator("h1")).to_have_text("Learning designs")
    launched = [url for url in policies if url.endswith("/lti/launch")]
    assert launched and "frame-ancestors 'self'" in policies[launched[0]]
    assert "script-src 'self'" in policies[launched[0]]
    assert violations == []
    # The check is not blind: an inline script the policy forbids is reported.
    instructor.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = '1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(300)
    assert any("script-src" in text for text in violations), violations
