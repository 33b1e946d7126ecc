"""Design files and launch values shared by the designs tests (services, lti, web).

The sample's id is not the example course's (``intro-programming``): other tests publish that
one, and a process-wide cache of compiled designs keyed by id and version must never meet two
different contents under one key (tests roll their publications back; production never does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.catalogue import Publisher, Tenant
from adaptive_lti.core.lti import (
    DEEP_LINKING_REQUEST,
    RESOURCE_LINK_REQUEST,
    CourseContext,
    LaunchContext,
    Person,
    ResourceLinkInfo,
    normalise_role,
)
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.services import design_publishing

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ISSUER = "https://moodle.example.edu"
CLIENT_ID = "Xc7CLIENTIDx9"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"

INTRO_V1 = """\
design: sample-programming
title: Introduction to Programming
version: 1
attributes:
  prior_programming:
    type: choice
    values: [none, some, experienced]
    sources: [custom, intake]
activities:
  welcome: {kind: intake, title: Welcome, ask: [prior_programming]}
  basics: {kind: page, title: Basics, body: "Variables hold values."}
  project:
    kind: check
    title: Project
    pass_mark: 0.6
    questions:
      - {id: q1, prompt: "2 + 2?", choices: ["3", "4"], answer: "4"}
route:
  - welcome
  - branch:
      - name: foundations
        when: prior_programming == "none"
        then: [basics]
      - name: standard
        otherwise: true
        then: []
  - project
completion: {move_on: completed-and-passed, passed_when: project.score >= 0.6}
grade: project.score
"""


def intro(version: int = 1, *, title: str = "Introduction to Programming") -> str:
    return INTRO_V1.replace("version: 1", f"version: {version}").replace(
        "title: Introduction to Programming", f"title: {title}"
    )


# A branch without "otherwise": learners with prior_programming=some have no route (lint error
# "dead-end" at the branch, lines 19-22).
INTRO_WITH_DEAD_END = INTRO_V1.replace(
    """      - name: standard
        otherwise: true
        then: []
""",
    "",
)

# An attribute nothing reads or asks (lint warning "unused-attribute" at line 9).
INTRO_WITH_WARNING = INTRO_V1.replace(
    "activities:",
    """  goal:
    type: choice
    values: [academic, interest]
    sources: [intake]
activities:""",
)

# No grade: deep linking must not ask the platform for a gradebook column.
UNGRADED = """\
design: reading-club
title: Reading club
version: 1
activities:
  intro: {kind: page, title: Introduction, body: "Welcome to the reading club."}
route:
  - intro
"""

# A page kept in a Markdown file beside the design.
WITH_PAGE_FILE = """\
design: with-files
title: Pages in files
version: 1
activities:
  intro: {kind: page, title: Introduction, file: intro.md}
route:
  - intro
"""


def launch_context(
    *,
    message_type: str = RESOURCE_LINK_REQUEST,
    roles: tuple[str, ...] = (LEARNER,),
    subject: str = "3",
    name: str = "Student One",
    custom: dict[str, str] | None = None,
    resource_link_id: str | None = "1",
    context_id: str | None = "2",
    deployment_id: str = "1",
    issuer: str = ISSUER,
    client_id: str = CLIENT_ID,
    deep_linking_settings: dict[str, Any] | None = None,
    ags_scopes: tuple[str, ...] | None = (
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    ),
) -> LaunchContext:
    return LaunchContext(
        issuer=issuer,
        client_id=client_id,
        deployment_id=deployment_id,
        message_type=message_type,
        target_link_uri="http://testserver/lti/launch",
        person=Person(subject=subject, name=name),
        roles=tuple(normalise_role(role) for role in roles),
        context=CourseContext(context_id, "LTI101", "LTI 101", ("CourseSection",))
        if context_id
        else None,
        resource_link=ResourceLinkInfo(resource_link_id, "Harness activity")
        if resource_link_id and message_type == RESOURCE_LINK_REQUEST
        else None,
        custom=custom or {},
        ags_endpoint=None
        if ags_scopes is None
        else {
            "lineitems": f"{issuer}/mod/lti/services.php/2/lineitems?type_id=1",
            "scope": list(ags_scopes),
        },
        deep_linking_settings=deep_linking_settings,
    )


MOODLE_DEEP_LINKING_SETTINGS: dict[str, Any] = {
    "accept_copy_advice": False,
    "accept_multiple": True,
    "accept_presentation_document_targets": ["frame", "iframe", "window"],
    "accept_types": ["ltiResourceLink"],
    "accept_unsigned": False,
    "auto_create": False,
    "can_confirm": False,
    "deep_link_return_url": f"{ISSUER}/mod/lti/contentitem_return.php?course=2&id=1&sesskey=X",
    "text": "",
    "title": "DL",
}


def deep_linking_launch(**overrides: Any) -> LaunchContext:
    values: dict[str, Any] = {
        "message_type": DEEP_LINKING_REQUEST,
        "roles": (INSTRUCTOR,),
        "subject": "4",
        "name": "Teacher One",
        "deep_linking_settings": dict(MOODLE_DEEP_LINKING_SETTINGS),
        "resource_link_id": None,
    }
    values.update(overrides)
    return launch_context(**values)


def register_platform(session: Session) -> int:
    """Register the platform the sample launches come from (deployment "1"); its id. A
    platform registered already (by a harness) is kept."""
    found = registrations_repo.find_registration(session, ISSUER, CLIENT_ID)
    if found is not None:
        return found.id
    registration = registrations_repo.add_registration(
        session,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        auth_login_url=ISSUER + "/mod/lti/auth.php",
        auth_token_url=ISSUER + "/mod/lti/token.php",
        jwks_url=ISSUER + "/mod/lti/certs.php",
        deployment_ids=["1"],
        now=NOW,
    )
    return registration.id


def tenant(session: Session) -> Tenant:
    """The tenant of the sample launches (the platform above, registered when it is not)."""
    return Tenant(register_platform(session))


def by(name: str) -> Publisher:
    """A publisher on the command line (may publish any version of any of the tenant's designs)."""
    return Publisher(name, command_line=True)


EXAMPLE_DESIGN = (
    Path(__file__).resolve().parents[1] / "examples" / "intro-programming" / "design.yaml"
)


def publish_example(session_factory: sessionmaker[Session], *, now: datetime) -> None:
    """Publish ``examples/intro-programming`` into the sample tenant, in its own transaction."""
    with transaction(session_factory) as session:
        design_publishing.publish_design(
            session,
            tenant(session),
            EXAMPLE_DESIGN.read_text(),
            "design.yaml",
            by("tests"),
            now=now,
        )
