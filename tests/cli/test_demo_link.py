"""The demo platform registers itself with the tool: idempotent, repaired when its key changes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from adaptive_lti.cli.demo_link import register_with_tool
from adaptive_lti.core.lti import RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.demo.platform import DemoPlatform, PlatformKey, generate_private_key_pem

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def demo_platform(key: PlatformKey | None = None) -> DemoPlatform:
    return DemoPlatform.for_tool(
        "http://tool.test:8000", key or PlatformKey.from_pem(generate_private_key_pem())
    )


def test_registers_the_platform_its_key_and_deployment_1(session: Session) -> None:
    platform = demo_platform()
    register_with_tool(session, platform, NOW)
    found = registrations_repo.find_registration(session, platform.issuer, platform.client_id)
    assert found is not None
    assert found.issuer == "http://tool.test:8000/demo-platform"
    assert found.auth_login_url == "http://tool.test:8000/demo-platform/auth"
    assert found.auth_token_url == "http://tool.test:8000/demo-platform/token"
    assert found.static_jwks is not None
    assert dict(found.static_jwks) == platform.key.public_jwks()
    assert found.status is RegistrationStatus.active
    deployment = registrations_repo.find_deployment(session, found.id, "1")
    assert deployment is not None and deployment.active


def test_registering_again_changes_nothing(session: Session) -> None:
    platform = demo_platform()
    register_with_tool(session, platform, NOW)
    before = registrations_repo.find_registration(session, platform.issuer, platform.client_id)
    register_with_tool(session, platform, NOW)
    after = registrations_repo.find_registration(session, platform.issuer, platform.client_id)
    assert before == after
    assert after is not None
    assert [d.deployment_id for d in registrations_repo.list_deployments(session, after.id)] == [
        "1"
    ]


def test_a_new_platform_key_replaces_the_registration(session: Session) -> None:
    register_with_tool(session, demo_platform(), NOW)
    platform = demo_platform()  # same issuer and client id, another key
    register_with_tool(session, platform, NOW)
    found = registrations_repo.find_registration(session, platform.issuer, platform.client_id)
    assert found is not None and found.static_jwks is not None
    assert dict(found.static_jwks) == platform.key.public_jwks()


def test_an_inactive_deployment_or_registration_is_activated(session: Session) -> None:
    platform = demo_platform()
    register_with_tool(session, platform, NOW)
    found = registrations_repo.find_registration(session, platform.issuer, platform.client_id)
    assert found is not None
    registrations_repo.set_deployment_active(session, found.id, "1", active=False, now=NOW)
    registrations_repo.set_registration_status(
        session, found.id, RegistrationStatus.awaiting_approval
    )
    register_with_tool(session, platform, NOW)
    again = registrations_repo.find_registration(session, platform.issuer, platform.client_id)
    assert again is not None and again.status is RegistrationStatus.active
    deployment = registrations_repo.find_deployment(session, found.id, "1")
    assert deployment is not None and deployment.active
