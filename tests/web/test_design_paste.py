"""The design page's paste box: pasted YAML is checked like an uploaded file (problems under the
name pasted.yaml, publishing sends the same text back), and a form with neither says what to do.
SQLite and PostgreSQL, through the app with a real instructor launch."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.design_samples import INTRO_V1, INTRO_WITH_DEAD_END
from tests.lti.harness import LtiHarness, harness, instructor_token

# What a browser sends for a file input when no file was chosen: an empty, unnamed part.
NO_FILE = {"design_file": ("", b"", "application/octet-stream")}


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


def test_pasted_yaml_is_checked_and_can_be_published(h: LtiHarness) -> None:
    token = instructor_token(h)
    checked = h.client.post(
        "/lti/designs/check",
        data={"tool_session": token, "design_text": INTRO_V1},
        files=NO_FILE,
    )
    assert checked.status_code == 200, checked.text
    text = html.unescape(checked.text)
    assert "Check of pasted.yaml" in text and "Publish version 1" in text
    published = h.client.post(
        "/lti/designs/publish",
        data={"tool_session": token, "filename": "pasted.yaml", "source_text": INTRO_V1},
    )
    assert published.status_code == 200 and "Published" in published.text


def test_pasted_yaml_with_errors_shows_them_with_their_lines(h: LtiHarness) -> None:
    token = instructor_token(h)
    checked = h.client.post(
        "/lti/designs/check", data={"tool_session": token, "design_text": INTRO_WITH_DEAD_END}
    )
    assert checked.status_code == 422
    text = html.unescape(checked.text)
    assert re.search(r"pasted\.yaml:\d+:\d+: error", text)
    assert "Publish version" not in text


@pytest.mark.parametrize(
    ("fields", "files"),
    [({"design_text": "   "}, None), ({}, NO_FILE), ({}, None)],
    ids=["blank text", "empty file part", "nothing"],
)
def test_neither_a_file_nor_text_says_what_to_do(
    h: LtiHarness, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]] | None
) -> None:
    token = instructor_token(h)
    response = h.client.post(
        "/lti/designs/check", data={"tool_session": token, **fields}, files=files
    )
    assert response.status_code == 422
    assert "no file was chosen and no text was pasted" in html.unescape(response.text)


def test_publish_can_use_the_design_for_this_activity_at_once(h: LtiHarness) -> None:
    token = instructor_token(h)
    checked = h.client.post(
        "/lti/designs/check", data={"tool_session": token, "design_text": INTRO_V1}
    )
    assert 'name="use_here"' in checked.text and "checked" in checked.text
    published = h.client.post(
        "/lti/designs/publish",
        data={
            "tool_session": token,
            "filename": "pasted.yaml",
            "source_text": INTRO_V1,
            "use_here": "yes",
        },
    )
    assert published.status_code == 200
    assert "This activity now runs sample-programming" in html.unescape(published.text)
    course = h.client.get("/teaching/", params={"tool_session": token})
    assert "sample-programming" in course.text and "No design is bound" not in course.text
