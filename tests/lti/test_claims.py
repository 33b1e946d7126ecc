"""Claim rules (LTI Core 1.3 §5) and parsing into LaunchContext, on Moodle 4.5-shaped payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.lti.claims import check_message_claims, parse_launch_context
from tests.design_samples import MOODLE_DEEP_LINKING_SETTINGS
from tests.lti.scripted_platform import INSTRUCTOR, LTI, ScriptedPlatform

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


def student() -> dict[str, Any]:
    return ScriptedPlatform().claims(nonce="n", now=NOW)


def moodle_teacher_deep_linking() -> dict[str, Any]:
    """The teacher deep-linking request of moodle-payloads.md (no resource_link, no data)."""
    claims = ScriptedPlatform().claims(nonce="n", now=NOW, role=INSTRUCTOR, subject="4")
    claims.pop(LTI + "resource_link")
    claims.pop("https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome")
    claims[LTI + "message_type"] = "LtiDeepLinkingRequest"
    claims[LTI + "launch_presentation"] = {"locale": "en"}
    claims[DL] = {
        **MOODLE_DEEP_LINKING_SETTINGS,
        "deep_link_return_url": "https://moodle.example.edu/mod/lti/contentitem_return.php?course=2&id=1&sesskey=REDACTED",
    }
    return claims


def test_moodle_student_launch_parses() -> None:
    claims = student()
    check_message_claims(claims)
    launch = parse_launch_context(claims, "Xc7CLIENTIDx9")
    assert launch.person.subject == "3" and launch.person.username == "student1"
    assert launch.person.person_sourcedid == "SIS-student1"
    assert launch.context is not None and launch.context.id == "2"
    assert launch.context.types == ("http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection",)
    assert launch.resource_link is not None and launch.resource_link.title == "Harness activity"
    assert launch.role_short_names == ("Learner",) and not launch.is_instructor
    assert launch.custom["user_sis"] == "SIS-student1"
    assert launch.ext == {"lms": "moodle-2", "user_username": "student1"}
    assert launch.basic_outcome is not None and launch.tool_platform is not None
    assert launch.tool_platform["product_family_code"] == "moodle"
    assert launch.deployment_id == "1" and launch.locale == "en"


def test_moodle_teacher_deep_linking_request_parses() -> None:
    claims = moodle_teacher_deep_linking()
    check_message_claims(claims)
    launch = parse_launch_context(claims, "Xc7CLIENTIDx9")
    assert launch.is_deep_linking and launch.is_instructor
    assert launch.resource_link is None
    assert launch.deep_linking_settings is not None
    assert launch.deep_linking_settings["accept_types"] == ["ltiResourceLink"]


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({LTI + "version": "1.1"}, "LTI version"),
        ({LTI + "message_type": 7}, "message type"),
        ({LTI + "deployment_id": ""}, "deployment id"),
        ({LTI + "target_link_uri": None}, "target link URI"),
        ({"sub": ""}, "user (sub)"),
        ({LTI + "roles": None}, "roles"),
        ({LTI + "roles": [None]}, "roles"),
        ({LTI + "context": {"title": "no id"}}, "context"),
        ({LTI + "custom": "x=1"}, "custom parameters"),
        ({LTI + "resource_link": {"id": ""}}, "resource link id"),
    ],
)
def test_claim_rules(change: dict[str, Any], check: str) -> None:
    claims = student()
    for name, value in change.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    with pytest.raises(LaunchError) as refused:
        check_message_claims(claims)
    assert refused.value.check == check and refused.value.status_code == 400


def test_empty_roles_and_extra_claims_are_fine() -> None:
    claims = student()
    claims[LTI + "roles"] = []
    claims["https://vendor.example/claim"] = {"x": 1}
    check_message_claims(claims)
    assert parse_launch_context(claims, "c").roles == ()


def test_overlong_text_is_cut_not_refused() -> None:
    claims = student()
    claims["name"] = "n" * 10_000
    claims[LTI + "custom"] = {"k": "v" * 10_000}
    launch = parse_launch_context(claims, "c")
    assert launch.person.name is not None and len(launch.person.name) == 4096
    assert len(launch.custom["k"]) == 4096


def test_non_string_personal_claims_are_dropped() -> None:
    claims = student()
    claims["email"] = ["a@example.com"]
    claims["given_name"] = 5
    launch = parse_launch_context(claims, "c")
    assert launch.person.email is None and launch.person.given_name is None
