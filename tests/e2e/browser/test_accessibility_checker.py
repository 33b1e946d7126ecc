"""The axe-core helper the page tests use finds real violations and passes clean pages."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.e2e.browser.accessibility import accessibility_violations, assert_accessible

CLEAN = """<!doctype html><html lang="en"><head><title>Clean</title></head>
<body><main><h1>Clean</h1><button type="button">Save</button></main></body></html>"""
BROKEN = """<!doctype html><html lang="en"><head><title>Broken</title></head>
<body><main><h1>Broken</h1><input type="text"><button type="button"></button></main></body></html>"""


def test_a_clean_page_passes(page: Page) -> None:
    page.set_content(CLEAN)
    assert_accessible(page)


def test_an_unlabelled_field_and_an_empty_button_are_found(page: Page) -> None:
    page.set_content(BROKEN)
    found = {violation["id"] for violation in accessibility_violations(page)}
    assert {"label", "button-name"} <= found
    with pytest.raises(AssertionError, match="button-name"):
        assert_accessible(page)
