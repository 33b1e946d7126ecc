"""The instructor's design upload in the browser, inside the course page's frame: pasted YAML with
an error is refused with the line it is on, a new version uploaded as a file is published and used
for the activity in one step, and the Learners page shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser.driver import EXAMPLE, open_embedded, press

pytestmark = pytest.mark.browser


def test_upload_check_publish_and_use_a_design(page: Page, screenshots: Path) -> None:
    source = EXAMPLE.read_text()
    assert "\nversion: 1\n" in source
    version_2 = source.replace("\nversion: 1\n", "\nversion: 2\n", 1)
    # The route's first step names an activity the design does not have.
    broken = version_2.replace("route:\n  - welcome\n", "route:\n  - welcom\n", 1)
    assert broken != version_2
    line = broken.splitlines().index("  - welcom") + 1

    tool = open_embedded(page, "irene")
    press(tool, tool.get_by_role("button", name="Change the design or upload a new version"))
    expect(tool.get_by_role("heading", name="Learning designs")).to_be_visible()

    # Pasted rather than uploaded: the same check, the problems under the name pasted.yaml.
    tool.get_by_label("…or paste the design's YAML").fill(broken)
    press(tool, tool.get_by_role("button", name="Check the file"))
    problems = tool.locator("section[aria-labelledby='problems-title']")
    expect(problems.locator("h2")).to_contain_text("error")
    expect(problems).to_contain_text(f"pasted.yaml:{line}:")
    expect(problems).to_contain_text("welcom")
    expect(tool.get_by_role("button", name="Publish version 2")).to_have_count(0)
    page.screenshot(path=screenshots / "design-refused.png", full_page=True)

    press(tool, tool.get_by_role("button", name="Back to the designs"))
    tool.locator("#design-file").set_input_files(
        {"name": "intro.yaml", "mimeType": "text/yaml", "buffer": version_2.encode()}
    )
    press(tool, tool.get_by_role("button", name="Check the file"))
    expect(problems.locator("h2")).to_contain_text("0 errors")
    expect(tool.get_by_label("and use it for this activity")).to_be_checked()
    press(tool, tool.get_by_role("button", name="Publish version 2"))
    status = tool.get_by_role("status")
    expect(status).to_contain_text("Published intro-programming version 2")
    expect(status).to_contain_text("This activity now runs intro-programming")

    press(tool, tool.get_by_role("button", name="Learners and where they are"))
    design = tool.locator("section[aria-labelledby='design-title']")
    expect(design).to_contain_text("intro-programming")
    expect(design).to_contain_text("version 2")
