"""The demo platform's deep linking and dynamic registration in a real browser: the auto-submitting
forms carry the teacher from "Add an activity" to the tool's picker and back, and the Manage tools
page listens for the tool's ``org.imsglobal.lti.close`` message (LTI Dynamic Registration 1.0
§3.7) from its frame and then shows the new tool."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_a_teacher_adds_an_activity_and_a_learner_opens_it(page: Page, screenshots: Path) -> None:
    page.goto("/demo-platform/")
    page.locator("[data-deep-linking='irene']").click()
    # Login, authorization and the deep linking launch post themselves: the tool's picker.
    page.wait_for_url(re.compile(r"/lti/launch$"))
    page.get_by_label(re.compile("Introduction to Programming")).first.check()
    page.screenshot(path=screenshots / "deep-linking-picker.png", full_page=True)
    page.get_by_role("button", name="Add to the course").click()
    page.wait_for_url(re.compile(r"/demo-platform/deep-linking/return"))
    expect(page.locator("h1")).to_have_text("Activity added to the course")
    page.screenshot(path=screenshots / "deep-linking-added.png", full_page=True)

    page.get_by_role("link", name="Return to the course").click()
    row = page.locator("tr[data-added-activity]").last
    expect(row).to_contain_text("design=intro-programming")
    row.locator("select[name='person']").select_option("ana")
    row.locator("button[data-launch-activity]").click()
    page.wait_for_url(re.compile(r"/lti/launch$"))
    # The new activity runs the example course: Ana is asked its intake question.
    expect(page.locator("form[action$='/journey/intake'] legend")).to_have_count(1)


def test_an_administrator_registers_the_tool_and_the_frame_closes(
    page: Page, screenshots: Path
) -> None:
    page.goto("/demo-platform/admin/tools")
    before = page.locator("tr[data-tool-client-id]").count()
    page.get_by_role("button", name="Add LTI Advantage").click()
    frame_element = page.locator("#registration-frame")
    expect(frame_element).to_be_visible()
    frame = page.frame_locator("#registration-frame")
    close = frame.locator("[data-lti-close]")
    expect(close).to_be_visible()
    page.screenshot(path=screenshots / "registration-frame.png", full_page=True)
    close.click()
    # The platform heard org.imsglobal.lti.close and went back to Manage tools.
    page.wait_for_url(re.compile(r"/demo-platform/admin/tools$"))
    expect(page.locator("tr[data-tool-client-id]")).to_have_count(before + 1)
    expect(page.locator("tr[data-tool-client-id]").last).to_contain_text("Pending")
    page.screenshot(path=screenshots / "registration-done.png", full_page=True)
