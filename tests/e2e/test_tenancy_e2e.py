"""Tenants over real HTTP against the real server (``adaptive-lti demo``, SQLite and PostgreSQL):
two unrelated platforms registered in its database. The second platform's instructor publishes
"version 2" of the first platform's design through ``POST /lti/designs/publish``; the first
platform's learners stay on theirs (issue 7). Nor can they reach the demo platform's example
course, which the demo publishes into the demo platform's tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import DesignOwner, DesignVersion
from adaptive_lti.demo.platform import DEMO_CLIENT_ID
from tests.design_samples import INTRO_V1
from tests.e2e.conftest import RunningServer
from tests.e2e.test_deep_linking_e2e import launch
from tests.lti.harness import token_of
from tests.lti.scripted_platform import INSTRUCTOR, LEARNER, LTI, ScriptedPlatform

DESIGN_V1 = INTRO_V1.replace("design: sample-programming", "design: e2e-tenant")
HIJACKED_V2 = (
    DESIGN_V1.replace("version: 1", "version: 2")
    .replace("Variables hold values.", "Hijacked content.")
    .replace("title: Introduction to Programming", "title: Hijacked course")
)
EXAMPLE_V2 = """\
design: intro-programming
title: Hijacked example
version: 2
activities:
  intro: {kind: page, title: Introduction, body: "Hijacked content."}
route:
  - intro
"""


def register(server: RunningServer, *platforms: ScriptedPlatform) -> None:
    engine = make_engine(server.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            for platform in platforms:
                if registrations_repo.find_registration(
                    session, platform.issuer, platform.client_id
                ):
                    continue
                platform.register(session, datetime.now(UTC), static=True)
    finally:
        engine.dispose()


def with_design(design: str) -> Any:
    def mutate(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"]["design"] = design

    return mutate


def publish(
    server: RunningServer, platform: ScriptedPlatform, text: str, subject: str = "4"
) -> httpx.Response:
    with httpx.Client(timeout=30) as teacher:
        page = launch(teacher, server, platform, role=INSTRUCTOR, subject=subject, mutate=None)
        assert page.status_code == 200, page.text
        return teacher.post(
            server.url + "/lti/designs/publish",
            data={"tool_session": token_of(page.text), "filename": "d.yaml", "source_text": text},
        )


def learner_page(server: RunningServer, platform: ScriptedPlatform, subject: str) -> str:
    with httpx.Client(timeout=30) as learner:
        page = launch(
            learner,
            server,
            platform,
            role=LEARNER,
            subject=subject,
            mutate=with_design("e2e-tenant"),
        )
    assert page.status_code == 200, page.text
    return page.text


def test_a_second_platform_cannot_hijack_the_first_platforms_design(
    running_server: RunningServer,
) -> None:
    first = ScriptedPlatform(issuer="https://tenant-a.example.edu", client_id="a", key_index=2)
    second = ScriptedPlatform(issuer="https://tenant-b.example.org", client_id="b", key_index=3)
    register(running_server, first, second)
    assert publish(running_server, first, DESIGN_V1).status_code == 200
    assert "Variables hold values." in learner_page(running_server, first, "3")

    # The second platform's instructor publishes "version 2" of the same id: into its own
    # catalogue, and the example course's id too.
    assert publish(running_server, second, HIJACKED_V2).status_code == 200
    assert publish(running_server, second, EXAMPLE_V2).status_code == 200

    for subject in ("3", "5"):  # the learner who started, and a newcomer
        page = learner_page(running_server, first, subject)
        assert "Variables hold values." in page and "Hijacked" not in page
    assert "Hijacked content." in learner_page(running_server, second, "3")

    engine = make_engine(running_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            demo = registrations_repo.find_registration(
                session, running_server.base_url + "/demo-platform", DEMO_CLIENT_ID
            )
            versions = session.execute(
                sa.select(DesignVersion.registration_id, DesignVersion.version).where(
                    DesignVersion.design_id == "intro-programming"
                )
            ).all()
            owners = session.execute(
                sa.select(DesignOwner.registration_id, DesignOwner.subject).where(
                    DesignOwner.design_id == "intro-programming"
                )
            ).all()
    finally:
        engine.dispose()
    assert demo is not None
    # The demo's example course is the demo platform's, still at its own version only.
    assert (demo.id, 2) not in versions and any(reg == demo.id for reg, _ in versions)
    # Its teacher (Irene, user 10) owns it; the second platform's instructor owns theirs.
    assert (demo.id, "10") in owners and all(
        reg != demo.id or subject == "10" for reg, subject in owners
    )
