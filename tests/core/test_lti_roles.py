"""Role and context-type vocabularies (LTI Core 1.3 Appendix A, §5.4.1), and launch values."""

from __future__ import annotations

import pytest

from adaptive_lti.core.lti import (
    CourseContext,
    LaunchContext,
    Person,
    RoleScope,
    is_teaching,
    normalise_context_type,
    normalise_role,
)

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
S = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"


@pytest.mark.parametrize(
    ("raw", "uri", "short", "scope", "principal"),
    [
        (M + "Learner", M + "Learner", "Learner", RoleScope.context, "Learner"),
        ("Instructor", M + "Instructor", "Instructor", RoleScope.context, "Instructor"),
        (" Learner ", M + "Learner", "Learner", RoleScope.context, "Learner"),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
            "TeachingAssistant",
            RoleScope.context,
            "Instructor",
        ),
        (INST + "Student", INST + "Student", "Student", RoleScope.institution, "Student"),
        (
            S + "Administrator",
            S + "Administrator",
            "Administrator",
            RoleScope.system,
            "Administrator",
        ),
        (
            "urn:lti:role:ims/lis/Instructor",
            M + "Instructor",
            "Instructor",
            RoleScope.context,
            "Instructor",
        ),
        (
            "urn:lti:role:ims/lis/Instructor/TeachingAssistant",
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
            "TeachingAssistant",
            RoleScope.context,
            "Instructor",
        ),
        (
            "urn:lti:instrole:ims/lis/Faculty",
            INST + "Faculty",
            "Faculty",
            RoleScope.institution,
            "Faculty",
        ),
        (
            "urn:lti:sysrole:ims/lis/SysAdmin",
            S + "SysAdmin",
            "SysAdmin",
            RoleScope.system,
            "SysAdmin",
        ),
        (
            "http://purl.imsglobal.org/vocab/lti/system/person#TestUser",
            "http://purl.imsglobal.org/vocab/lti/system/person#TestUser",
            "TestUser",
            RoleScope.system,
            "TestUser",
        ),
        ("Wizard", "Wizard", "Wizard", RoleScope.unknown, "Wizard"),
        (M + "Wizard", M + "Wizard", M + "Wizard", RoleScope.unknown, M + "Wizard"),
    ],
)
def test_normalise_role(raw: str, uri: str, short: str, scope: RoleScope, principal: str) -> None:
    role = normalise_role(raw)
    assert (role.uri, role.short, role.scope, role.principal) == (uri, short, scope, principal)
    assert role.known is (scope is not RoleScope.unknown)


@pytest.mark.parametrize(
    ("roles", "teaching"),
    [
        (["Instructor"], True),
        ([M + "Learner"], False),
        (["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"], True),
        ([M + "ContentDeveloper"], True),
        ([INST + "Administrator"], True),
        ([INST + "Instructor"], False),  # teaching somewhere in the institution, not this course
        ([], False),
        (["Wizard"], False),
    ],
)
def test_who_teaches(roles: list[str], teaching: bool) -> None:
    assert is_teaching(tuple(normalise_role(role) for role in roles)) is teaching


def test_context_types_become_uris() -> None:
    assert normalise_context_type("CourseSection") == (
        "http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"
    )
    assert normalise_context_type("urn:vendor:Club") == "urn:vendor:Club"


@pytest.mark.parametrize(
    ("person", "shown"),
    [
        (Person("3", name="Student One"), "Student One"),
        (Person("3", given_name="Ana", family_name="Silva"), "Ana Silva"),
        (Person("3", email="a@example.com"), "a@example.com"),
        (Person("3"), "User 3"),
        (Person(None), "Anonymous user"),
    ],
)
def test_display_name_uses_what_was_sent(person: Person, shown: str) -> None:
    assert person.display_name == shown


def test_launch_context_is_immutable() -> None:
    custom = {"a": "1"}
    launch = LaunchContext(
        issuer="i",
        client_id="c",
        deployment_id="1",
        message_type="LtiResourceLinkRequest",
        target_link_uri="http://t/lti/launch",
        person=Person("3"),
        roles=(normalise_role("Learner"),),
        context=CourseContext("2"),
        custom=custom,
        ext={"lms": "moodle-2"},
    )
    custom["a"] = "changed"
    assert launch.custom["a"] == "1"
    with pytest.raises(TypeError):
        launch.custom["b"] = "2"  # type: ignore[index]
    with pytest.raises(TypeError):
        launch.ext["x"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        launch.issuer = "other"  # type: ignore[misc]
    assert launch.role_short_names == ("Learner",) and not launch.is_instructor
