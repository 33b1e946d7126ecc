"""The new-window fallback in a real browser (issue 8): the tool's cookies are kept out of the
platform's frame, as a browser blocking third-party cookies does to a tool on another site, so
the frame shows "Open the activity in a new window". The link starts a new launch from the
platform (Moodle's mod/lti/launch.php for the activity: Moodle deletes the hint's launchid on
first use), and the new window reaches the learner's page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Route, expect
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.browser.driver import FRAME_NAME

pytestmark = pytest.mark.browser


def keep_the_tools_cookies_out_of_frames(context: BrowserContext) -> list[str]:
    """Requests to the tool made inside a frame go without cookies (what a browser that blocks
    third-party cookies sends); top-level windows keep theirs. Returns the URLs stripped."""
    stripped: list[str] = []

    def in_frame(request: Request) -> bool:
        try:
            return request.frame.parent_frame is not None
        except PlaywrightError:  # a new window's first navigation: no frame yet, top level
            return False

    def route(route: Route, request: Request) -> None:
        if in_frame(request):
            # The tool's cookies (the OIDC state cookie, path /lti) never reach it from the
            # frame: the browser did not keep them there.
            context.clear_cookies(name=re.compile(r"^lti1p3-"))
            stripped.append(request.url)
        route.continue_()

    context.route(re.compile(r".*/lti/.*"), route)
    return stripped


def test_blocked_cookies_in_the_frame_fall_back_to_a_working_new_window(
    context: BrowserContext, page: Page, screenshots: Path
) -> None:
    stripped = keep_the_tools_cookies_out_of_frames(context)
    page.goto("/demo-platform/course/ana")
    frame = page.frame(name=FRAME_NAME)
    assert frame is not None
    frame.wait_for_url(re.compile(r"/lti/launch$"))
    expect(frame.locator("h1")).to_have_text("Open the activity in a new window")
    assert any(url.endswith("/lti/launch") for url in stripped)
    link = frame.get_by_role("link", name="Open in a new window")
    assert re.search(r"/demo-platform/mod/lti/launch\.php\?id=7$", link.get_attribute("href") or "")
    page.screenshot(path=screenshots / "new-window-offer.png", full_page=True)

    with page.expect_popup() as opened:
        link.click()
    window = opened.value
    window.wait_for_url(re.compile(r"/lti/launch$"))
    window.wait_for_load_state()
    # Ana's journey starts: the intake, not "Invalid request" nor the new-window offer again.
    expect(window.locator("form[action$='/journey/intake']")).to_have_count(1)
    expect(window.locator("h1")).not_to_have_text("Open the activity in a new window")
    window.screenshot(path=screenshots / "new-window-working.png", full_page=True)
