"""Tenants through the app (TestClient, two scripted platforms, SQLite and PostgreSQL): a design
published from one platform registration is that registration's alone. Another platform's
instructor can neither publish over it, nor list, bind or launch into it.

The finding this guards: an instructor launched from a second, unrelated platform published
``version: 2`` of a design through ``POST /lti/designs/publish``, and the first platform's
learners got the hijacked content at their next launch (activities follow the newest version).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import LearnerEnrolment
from tests.design_samples import INTRO_V1, intro
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import INSTRUCTOR, LEARNER, LTI, ScriptedPlatform

ADMINISTRATOR = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
OTHER_ISSUER = "https://other-college.example.org"
# Version 2 of the first platform's design, as the second platform's instructor wrote it.
HIJACKED = intro(2, title="Hijacked course").replace("Variables hold values.", "Hijacked content.")


def routed(platforms: list[ScriptedPlatform]) -> httpx.MockTransport:
    """One transport answering each platform's JWKS by host."""
    by_host = {httpx.URL(p.issuer).host: p for p in platforms}

    def handle(request: httpx.Request) -> httpx.Response:
        return by_host[request.url.host].server.handle(request)

    return httpx.MockTransport(handle)


@dataclasses.dataclass
class TwoPlatforms:
    first: LtiHarness
    second: LtiHarness


@pytest.fixture
def two(session_factory: sessionmaker[Session], db_url: str) -> Iterator[TwoPlatforms]:
    with harness(session_factory, db_url) as first:
        other = ScriptedPlatform(issuer=OTHER_ISSUER, client_id="other-client", key_index=1)
        with transaction(first.session_factory) as session:
            other.register(session, first.clock.now)
        first.app.state.http_transport = routed([first.platform, other])
        yield TwoPlatforms(first, dataclasses.replace(first, platform=other, logins=[]))


def token_of(page: str) -> str:
    found = re.search(r'name="tool_session" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def custom(values: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    def mutate(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"].update(values)

    return mutate


def staff_token(
    h: LtiHarness, *, subject: str = "4", role: str = INSTRUCTOR, design: str | None = None
) -> str:
    mutate = custom({"design": design}) if design else None
    response = h.full_launch(role=role, subject=subject, mutate=mutate)
    assert response.status_code == 200, response.text
    return token_of(response.text)


def publish(h: LtiHarness, token: str, text: str) -> httpx.Response:
    return h.client.post(
        "/lti/designs/publish",
        data={"tool_session": token, "filename": "intro.yaml", "source_text": text},
    )


def learner_launch(h: LtiHarness, subject: str) -> httpx.Response:
    response = h.full_launch(
        role=LEARNER, subject=subject, mutate=custom({"design": "sample-programming"})
    )
    assert response.status_code == 200, response.text
    return response


def enrolled_versions(h: LtiHarness) -> dict[str, int]:
    with h.session_factory() as session:
        rows = session.execute(
            select(LearnerEnrolment.user_sub, LearnerEnrolment.design_version)
        ).all()
    return {sub: version for sub, version in rows}


def test_a_second_platform_cannot_publish_over_the_first_platforms_design(
    two: TwoPlatforms,
) -> None:
    first, second = two.first, two.second
    assert publish(first, staff_token(first), INTRO_V1).status_code == 200
    page = learner_launch(first, "3")
    assert "Variables hold values." in page.text and "Hijacked" not in page.text

    # The other platform's instructor publishes "version 2" of the same id.
    publish(second, staff_token(second), HIJACKED)

    again = learner_launch(first, "3")
    newcomer = learner_launch(first, "5")
    for response in (again, newcomer):
        assert "Hijacked" not in response.text
        assert "Variables hold values." in response.text
    assert enrolled_versions(first) == {"3": 1, "5": 1}
