"""The instructor's design pages: upload checked before publishing, and choosing the activity's
design, through the app with a real launch (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.catalogue import BindingMethod
from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import DesignBinding, DesignVersion
from adaptive_lti.services import design_publishing
from tests.design_samples import (
    INTRO_V1,
    INTRO_WITH_DEAD_END,
    NOW,
    WITH_PAGE_FILE,
    by,
    intro,
    tenant,
)
from tests.lti.harness import LtiHarness, harness, token_of
from tests.lti.scripted_platform import INSTRUCTOR, LTI


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


def instructor_token(h: LtiHarness, custom: dict[str, str] | None = None) -> str:
    def mutate(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"].update(custom or {})

    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=mutate)
    assert response.status_code == 200, response.text
    assert 'action="http://testserver/lti/designs"' in response.text
    return token_of(response.text)


def upload(
    h: LtiHarness, token: str, text: str | bytes, name: str = "intro.yaml"
) -> httpx.Response:
    content = text.encode() if isinstance(text, str) else text
    return h.client.post(
        "/lti/designs/check",
        data={"tool_session": token},
        files={"design_file": (name, content, "application/yaml")},
    )


def count(h: LtiHarness, table: type[Any]) -> int:
    with h.session_factory() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_an_upload_is_checked_then_published(h: LtiHarness) -> None:
    token = instructor_token(h)
    checked = upload(h, token, INTRO_V1)
    assert checked.status_code == 200
    assert "0 errors, 0 warnings" in checked.text
    assert "Publish version 1" in checked.text
    assert count(h, DesignVersion) == 0  # checking stores nothing

    source = re.search(r'name="source_text" value="([^"]*)"', checked.text)
    assert source and html.unescape(source.group(1)) == INTRO_V1
    published = h.client.post(
        "/lti/designs/publish",
        data={"tool_session": token, "filename": "intro.yaml", "source_text": INTRO_V1},
    )
    assert published.status_code == 200, published.text
    assert "Published sample-programming version 1" in published.text
    with h.session_factory() as session:
        version = design_publishing.get_design_version(
            session, tenant(session), "sample-programming"
        )
    assert version.source_text == INTRO_V1
    assert version.published_by == "Teacher One (user 4, LTI 101)"

    again = upload(h, token, INTRO_V1)
    assert again.status_code == 200
    assert "already published" in again.text and "Publish version" not in again.text


def test_an_upload_with_lint_errors_shows_them_and_cannot_be_published(h: LtiHarness) -> None:
    token = instructor_token(h)
    checked = upload(h, token, INTRO_WITH_DEAD_END)
    assert checked.status_code == 422
    assert re.search(r"intro\.yaml:\d+:\d+: error: some learners match no case", checked.text)
    assert "Publish version" not in checked.text
    refused = h.client.post(
        "/lti/designs/publish",
        data={"tool_session": token, "filename": "intro.yaml", "source_text": INTRO_WITH_DEAD_END},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 422
    assert count(h, DesignVersion) == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (intro(1, title="Other title"), "already published with other content"),
        (WITH_PAGE_FILE, "kept in files beside the design"),
    ],
)
def test_uploads_that_clash_say_why(h: LtiHarness, content: str, words: str) -> None:
    with transaction(h.session_factory) as session:
        design_publishing.publish_design(
            session, tenant(session), INTRO_V1, "intro.yaml", by("designer"), now=NOW
        )
    response = upload(h, instructor_token(h), content)
    assert response.status_code == 422
    assert words in response.text


def test_a_file_that_is_not_utf8_is_refused(h: LtiHarness) -> None:
    response = upload(h, instructor_token(h), INTRO_V1.encode("utf-16"))
    assert response.status_code == 422
    assert "UTF-8" in response.text


def test_an_instructor_chooses_the_activitys_design(h: LtiHarness) -> None:
    with transaction(h.session_factory) as session:
        design_publishing.publish_design(
            session, tenant(session), INTRO_V1, "intro.yaml", by("designer"), now=NOW
        )
    token = instructor_token(h)
    page = h.client.post("/lti/designs", data={"tool_session": token})
    assert "No design is set for this activity yet" in page.text
    chosen = h.client.post(
        "/lti/designs/bind", data={"tool_session": token, "design": "sample-programming"}
    )
    assert chosen.status_code == 200, chosen.text
    assert "This activity now runs sample-programming (following newer versions)" in chosen.text
    with h.session_factory() as session:
        [binding] = session.scalars(select(DesignBinding)).all()
    assert binding.method == BindingMethod.instructor.value
    assert binding.bound_by.startswith("Teacher One (user 4")
    assert binding.resource_link_id == "1"


def test_an_unpublished_design_in_the_custom_parameter_is_shown_not_fatal(
    h: LtiHarness,
) -> None:
    token = instructor_token(h, custom={"design": "not-published"})
    page = h.client.post("/lti/designs", data={"tool_session": token})
    assert page.status_code == 200
    assert "No design &#39;not-published&#39; is published" in page.text


def test_learners_cannot_open_the_design_pages(h: LtiHarness) -> None:
    learner = h.full_launch()
    found = re.search(r'name="tool_session" value="([^"]+)"', learner.text)
    token = found.group(1) if found else h.client.cookies.get("adaptive_lti_session") or ""
    assert h.client.post("/lti/designs", data={"tool_session": token}).status_code == 403
    assert upload(h, token, INTRO_V1).status_code == 403
    assert count(h, DesignVersion) == 0
