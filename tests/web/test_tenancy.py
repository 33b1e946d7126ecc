"""Tenants through the app (TestClient, two scripted platforms, SQLite and PostgreSQL): a design
published from one platform registration is that registration's alone. Another platform's
instructor can neither publish over it, nor list, bind or launch into it.

The finding this guards: an instructor launched from a second, unrelated platform published
``version: 2`` of a design through ``POST /lti/designs/publish``, and the first platform's
learners got the hijacked content at their next launch (activities follow the newest version).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db.session import transaction
from adaptive_lti.db.tables import (
    DesignBinding,
    DesignDeepLink,
    DesignOwner,
    DesignVersion,
    LearnerEnrolment,
)
from tests.design_samples import INTRO_V1, intro
from tests.lti.harness import LtiHarness, harness, token_of
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


def test_the_second_platform_publishes_its_own_design_of_that_id(two: TwoPlatforms) -> None:
    first, second = two.first, two.second
    publish(first, staff_token(first), INTRO_V1)
    token = staff_token(second)
    # Its "version 2" is the first version of its own design: its instructor owns it.
    published = publish(second, token, HIJACKED)
    assert published.status_code == 200, published.text
    assert "Published sample-programming version 2" in published.text
    theirs = second.client.post("/lti/designs", data={"tool_session": token})
    assert "Hijacked course" in theirs.text
    ours = first.client.post("/lti/designs", data={"tool_session": staff_token(first)})
    assert "Hijacked course" not in ours.text and "Introduction to Programming" in ours.text


def test_a_second_platform_cannot_list_bind_or_launch_into_the_first_platforms_design(
    two: TwoPlatforms,
) -> None:
    first, second = two.first, two.second
    publish(first, staff_token(first), INTRO_V1)
    token = staff_token(second)
    listed = second.client.post("/lti/designs", data={"tool_session": token})
    assert listed.status_code == 200
    assert "sample-programming" not in listed.text
    bound = second.client.post(
        "/lti/designs/bind", data={"tool_session": token, "design": "sample-programming"}
    )
    assert bound.status_code == 404
    assert "No design &#39;sample-programming&#39; is published for this platform" in bound.text
    launched = second.full_launch(
        role=LEARNER, subject="3", mutate=custom({"design": "sample-programming"})
    )
    assert launched.status_code in {200, 404}, launched.text
    assert "Variables hold values." not in launched.text
    with second.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(LearnerEnrolment)) == 0
        assert session.scalar(select(func.count()).select_from(DesignBinding)) == 0


def test_a_non_owner_instructor_gets_a_403_that_says_who_can_and_how_to_copy(
    two: TwoPlatforms,
) -> None:
    first = two.first
    assert publish(first, staff_token(first, subject="4"), INTRO_V1).status_code == 200
    colleague = staff_token(first, subject="7")
    checked = first.client.post(
        "/lti/designs/check",
        data={"tool_session": colleague},
        files={"design_file": ("intro.yaml", intro(2).encode(), "application/yaml")},
    )
    assert checked.status_code == 422
    assert "Only the owners of sample-programming" in checked.text
    assert "Publish version" not in checked.text
    refused = publish(first, colleague, intro(2))
    assert refused.status_code == 403
    page = html.unescape(refused.text)
    assert "Only the owners of sample-programming publish new versions of it" in page
    assert "Teacher One" in page and "administrators" in page
    assert "copy it under a new id" in page
    with first.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DesignVersion)) == 1
    # They may still use it for their activity, and publish a copy under an id of their own.
    bound = first.client.post(
        "/lti/designs/bind", data={"tool_session": colleague, "design": "sample-programming"}
    )
    assert bound.status_code == 200, bound.text
    copy = intro(1).replace("design: sample-programming", "design: my-programming")
    assert publish(first, colleague, copy).status_code == 200
    with first.session_factory() as session:
        owners = session.execute(select(DesignOwner.design_id, DesignOwner.subject)).all()
    assert sorted(owners) == [("my-programming", "7"), ("sample-programming", "4")]


def test_the_owner_and_an_administrator_publish_new_versions(two: TwoPlatforms) -> None:
    first = two.first
    owner = staff_token(first, subject="4")
    assert publish(first, owner, INTRO_V1).status_code == 200
    assert publish(first, owner, intro(2)).status_code == 200
    admin = staff_token(first, subject="9", role=ADMINISTRATOR)
    published = publish(first, admin, intro(3))
    assert published.status_code == 200, published.text
    assert "Published sample-programming version 3" in published.text
    with first.session_factory() as session:
        owners = session.scalars(select(DesignOwner.subject)).all()
    assert owners == ["4"]  # publishing later versions makes no one else owner


def test_the_deep_linking_picker_offers_only_the_platforms_own_designs(
    two: TwoPlatforms,
) -> None:
    first, second = two.first, two.second
    publish(first, staff_token(first), INTRO_V1)

    def deep_linking(claims: dict[str, Any]) -> None:
        claims[LTI + "message_type"] = "LtiDeepLinkingRequest"
        claims.pop(LTI + "resource_link", None)
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
            "deep_link_return_url": f"{OTHER_ISSUER}/mod/lti/contentitem_return.php",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
        }

    picker = second.full_launch(role=INSTRUCTOR, subject="4", mutate=deep_linking)
    assert picker.status_code == 200, picker.text
    assert "sample-programming" not in picker.text
    chosen = second.client.post(
        "/lti/deep-linking/select",
        data={"tool_session": token_of(picker.text), "design": "sample-programming"},
    )
    assert chosen.status_code == 404
    with second.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DesignDeepLink)) == 0


def test_two_platforms_designs_of_one_id_and_version_never_mix_in_a_process(
    two: TwoPlatforms,
) -> None:
    """Compiled designs are cached per process: the cache key holds the tenant too."""
    first, second = two.first, two.second
    theirs = INTRO_V1.replace("Variables hold values.", "Their own page.")
    assert publish(first, staff_token(first), INTRO_V1).status_code == 200
    assert publish(second, staff_token(second), theirs).status_code == 200
    assert "Variables hold values." in learner_launch(first, "3").text
    page = learner_launch(second, "3").text
    assert "Their own page." in page and "Variables hold values." not in page


def test_a_second_platforms_instructor_cannot_open_the_first_platforms_learners(
    two: TwoPlatforms,
) -> None:
    first, second = two.first, two.second
    publish(first, staff_token(first), INTRO_V1)
    learner_launch(first, "3")
    with first.session_factory() as session:
        [enrolment] = session.scalars(select(LearnerEnrolment.id)).all()
    # The second platform's instructor, on its own activity (same resource link id "1").
    token = staff_token(second, design="sample-programming")
    for method, path in (
        ("GET", f"/teaching/learners/{enrolment}"),
        ("POST", f"/teaching/learners/{enrolment}/reset"),
    ):
        # The token where each method takes it: a GET's link, a POST's form (proof of the page).
        response = (
            second.client.get(path, params={"tool_session": token})
            if method == "GET"
            else second.client.post(path, data={"tool_session": token, "reason": "testing"})
        )
        assert response.status_code == 404, response.text
    routes = second.client.get("/teaching/routes", params={"tool_session": token})
    assert routes.status_code == 200
    assert "1 learner" not in routes.text
    with first.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(LearnerEnrolment)) == 1
