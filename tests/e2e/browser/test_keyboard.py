"""Keyboard-only use of the embedded tool: Tab, Space and Enter (and typing into text fields),
nothing else. Every control of the page is reached by Tab, each shows a visible focus
indicator when reached, and the forms are sent from the keyboard: a learner's intake, and an
instructor moving a learner."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Frame, Page, expect

from tests.e2e.browser.driver import Plan, open_embedded, walk

pytestmark = pytest.mark.browser

# What identifies a control, for "was it reached": radios count once per group (Tab enters a
# group once; arrow keys move inside it), other controls one by one.
DESCRIBE = """(el) => {
  if (!el) return null;
  const tag = el.tagName.toLowerCase();
  if (tag === 'input' && el.type === 'radio') return 'radio-group:' + el.name;
  const text = (el.getAttribute('aria-label') || el.innerText || el.value || '').trim();
  return tag + '|' + (el.getAttribute('name') || '') + '|' + (el.getAttribute('href') || '')
    + '|' + text.slice(0, 60);
}"""

CONTROLS = f"""() => {{
  const describe = {DESCRIBE};
  const selector = 'a[href], button, summary, input:not([type=hidden]), select, textarea, '
    + '[tabindex]:not([tabindex="-1"])';
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  return [...new Set([...document.querySelectorAll(selector)]
    .filter((el) => !el.disabled && visible(el)).map(describe))];
}}"""

FOCUSED = f"""() => {{
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  return {{ id: ({DESCRIBE})(el), visible: outline || !!shadow }};
}}"""


def focus_in_frame(page: Page, frame: Frame) -> dict[str, object] | None:
    """What has the keyboard focus inside the tool's frame (None: the focus is outside it)."""
    if page.evaluate("document.activeElement && document.activeElement.id") != "contentframe":
        return None
    focused: dict[str, object] | None = frame.evaluate(FOCUSED)
    return focused


def tab_to(page: Page, frame: Frame, wanted: str, limit: int = 60) -> None:
    """Press Tab until the focus is on a control whose description contains ``wanted``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = focus_in_frame(page, frame)
        if focused is not None and wanted in str(focused["id"]):
            assert focused["visible"], f"no visible focus on {focused['id']}"
            return
    raise AssertionError(f"Tab never reached {wanted!r}")


def tab_through(page: Page, frame: Frame, limit: int = 150) -> list[dict[str, object]]:
    """Press Tab from the top of the course page until the focus has left the tool's frame
    again: every control met inside it, in order."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    met: list[dict[str, object]] = []
    entered = False
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = focus_in_frame(page, frame)
        if focused is None:
            if entered:
                return met
            continue
        entered = True
        met.append(focused)
    raise AssertionError(f"the focus never left the frame after {limit} Tabs: {met[-5:]}")


def assert_every_control_reached(page: Page, frame: Frame) -> None:
    met = tab_through(page, frame)
    reached = {str(item["id"]) for item in met}
    controls = set(frame.evaluate(CONTROLS))
    missing = controls - reached
    assert not missing, f"not reachable with Tab: {sorted(missing)}"
    hidden = [item["id"] for item in met if not item["visible"]]
    assert not hidden, f"focus not visible on: {hidden}"


def test_a_learner_answers_the_intake_with_the_keyboard(page: Page, screenshots: Path) -> None:
    frame = open_embedded(page, "gabi")  # nothing known of Gabi: both intake questions
    expect(frame.locator("form[action$='/journey/intake'] fieldset")).to_have_count(2)
    assert_every_control_reached(page, frame)

    tab_to(page, frame, "radio-group:attribute-prior_programming")
    page.keyboard.press("Space")
    tab_to(page, frame, "radio-group:attribute-goal")
    page.keyboard.press("Space")
    page.screenshot(path=screenshots / "keyboard-intake.png")
    tab_to(page, frame, "|Continue")
    with frame.expect_navigation():
        page.keyboard.press("Enter")
    # The first choices were picked: never programmed, studying for a degree. Next: the check.
    expect(frame.locator("form[action$='/journey/answer']")).to_be_visible()
    assert_every_control_reached(page, frame)
    tab_to(page, frame, "radio-group:choice")
    page.keyboard.press("Space")
    tab_to(page, frame, "|Submit answer")
    with frame.expect_navigation():
        page.keyboard.press("Enter")
    expect(frame.locator(".feedback")).to_be_visible()


def test_an_instructor_moves_a_learner_with_the_keyboard(page: Page, screenshots: Path) -> None:
    learner = open_embedded(page, "eve")
    walk(learner, Plan(intake={"goal": "interest"}), until="diagnostic")

    tool = open_embedded(page, "irene")
    expect(tool.locator("tr[data-learner='7']")).to_contain_text("Eve Evans")
    assert_every_control_reached(page, tool)
    tab_to(page, tool, "|Eve Evans")  # the link to her page, in the learners' table
    with tool.expect_navigation():
        page.keyboard.press("Enter")
    expect(tool.locator("h1#learner-title")).to_have_text("Eve Evans")
    assert_every_control_reached(page, tool)

    tab_to(page, tool, "select|target|")  # the first place offered: route "fast track"
    tab_to(page, tool, "textarea|reason|")
    page.keyboard.type("Showed strong code in the lab")
    tab_to(page, tool, "|Move the learner")
    page.screenshot(path=screenshots / "keyboard-move.png")
    with tool.expect_navigation():
        page.keyboard.press("Enter")
    expect(tool.get_by_role("status")).to_contain_text("the learner was moved")
    expect(tool.locator("ol.trace")).to_contain_text(
        "Moved to route fast track by Irene Ibsen (user 10): Showed strong code in the lab"
    )
