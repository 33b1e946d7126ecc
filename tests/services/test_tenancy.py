"""Tenant isolation in the designs service and repository (SQLite and PostgreSQL): two platform
registrations each with a design of the same id; nothing of one is reachable from the other."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import DesignReference, Publisher, Tenant
from adaptive_lti.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from adaptive_lti.core.lti import LaunchContext
from adaptive_lti.db import designs_repo, registrations_repo
from adaptive_lti.services import design_bindings, design_publishing, design_sharing
from tests.design_samples import (
    INSTRUCTOR,
    INTRO_V1,
    NOW,
    by,
    deep_linking_launch,
    intro,
    launch_context,
    tenant,
)

OTHER = "https://other-college.example.org"
THEIRS = INTRO_V1.replace("Variables hold values.", "Their own page.")


def other_tenant(session: Session) -> Tenant:
    registration = registrations_repo.add_registration(
        session,
        issuer=OTHER,
        client_id="other-client",
        auth_login_url=OTHER + "/auth",
        auth_token_url=OTHER + "/token",
        jwks_url=OTHER + "/certs",
        deployment_ids=["1"],
        now=NOW,
    )
    return Tenant(registration.id)


def other_launch(custom: dict[str, str]) -> LaunchContext:
    return launch_context(issuer=OTHER, client_id="other-client", custom=custom)


def test_each_tenant_reads_only_its_own_design(session: Session) -> None:
    first, second = tenant(session), other_tenant(session)
    design_publishing.publish_design(session, first, intro(1), "a.yaml", by("a"), now=NOW)
    design_publishing.publish_design(session, first, intro(2), "a.yaml", by("a"), now=NOW)
    design_publishing.publish_design(session, second, THEIRS, "b.yaml", by("b"), now=NOW)
    assert [s.latest_version for s in design_publishing.list_designs(session, first)] == [2]
    assert [s.latest_version for s in design_publishing.list_designs(session, second)] == [1]
    assert (
        "Their own page."
        in design_publishing.get_design_version(session, second, "sample-programming").source_text
    )
    assert designs_repo.find_version(session, second, "sample-programming", 2) is None
    assert designs_repo.version_source(session, second, "sample-programming", 2) is None
    with pytest.raises(NotFoundError, match="Version 2 of sample-programming is not published"):
        design_publishing.get_design_version(session, second, "sample-programming", 2)
    third = Tenant(second.registration_id + 1000)
    assert design_publishing.list_designs(session, third) == []
    assert not designs_repo.design_exists(session, third, "sample-programming")
    with pytest.raises(NotFoundError, match="published for this platform"):
        design_publishing.list_versions(session, third, "sample-programming")


def test_a_launch_binds_and_runs_its_own_platforms_design(session: Session) -> None:
    first, second = tenant(session), other_tenant(session)
    design_publishing.publish_design(session, first, INTRO_V1, "a.yaml", by("a"), now=NOW)
    custom = {"design": "sample-programming"}
    with pytest.raises(NotFoundError, match="published for this platform"):
        design_bindings.design_for_launch(session, other_launch(custom=custom), now=NOW)
    design_publishing.publish_design(session, second, THEIRS, "b.yaml", by("b"), now=NOW)
    ours = design_bindings.design_for_launch(session, launch_context(custom=custom), now=NOW)
    theirs = design_bindings.design_for_launch(session, other_launch(custom=custom), now=NOW)
    assert ours is not None and theirs is not None
    assert "Their own page." not in ours.version.source_text
    assert "Their own page." in theirs.version.source_text
    assert ours.binding.registration_id == first.registration_id
    assert theirs.binding.registration_id == second.registration_id
    # The repository finds a binding only in its tenant, whatever deployment pk is asked for.
    assert designs_repo.find_binding(session, second, ours.binding.deployment_pk, "1") is None
    assert design_bindings.bindings_of(session, second, "sample-programming") == [theirs.binding]


def test_a_deep_link_offer_is_taken_only_in_its_tenant(session: Session) -> None:
    first, second = tenant(session), other_tenant(session)
    design_publishing.publish_design(session, first, INTRO_V1, "a.yaml", by("a"), now=NOW)
    offer, _version = design_bindings.record_deep_link(
        session, deep_linking_launch(), DesignReference("sample-programming"), now=NOW
    )
    taken = designs_repo.take_deep_link_offer(
        session,
        second,
        deployment_pk=offer.deployment_pk,
        context_id=offer.context_id,
        design_id="sample-programming",
        pinned_version=None,
        created_after=NOW,
        now=NOW,
    )
    assert taken is None
    with pytest.raises(NotFoundError):
        design_bindings.record_deep_link(
            session,
            deep_linking_launch(issuer=OTHER, client_id="other-client"),
            DesignReference("sample-programming"),
            now=NOW,
        )


def test_owners_publish_new_versions_and_others_are_refused(session: Session) -> None:
    first = tenant(session)
    owner = Publisher("Teacher One", "4")
    colleague = Publisher("Teacher Two", "7")
    admin = Publisher("Admin", "9", administrator=True)
    design_publishing.publish_design(session, first, intro(1), "a.yaml", owner, now=NOW)
    assert [
        o.subject for o in design_publishing.owners_of(session, first, "sample-programming")
    ] == ["4"]
    with pytest.raises(PermissionDeniedError) as refused:
        design_publishing.publish_design(session, first, intro(2), "a.yaml", colleague, now=NOW)
    assert "owners: Teacher One" in refused.value.message
    assert "copy it under a new id" in refused.value.hint
    # Identical content again is a no-op anyone may ask for; new versions need an owner.
    assert not design_publishing.publish_design(
        session, first, intro(1), "a.yaml", colleague, now=NOW
    ).created
    assert design_publishing.publish_design(
        session, first, intro(2), "a.yaml", owner, now=NOW
    ).created
    assert design_publishing.publish_design(
        session, first, intro(3), "a.yaml", admin, now=NOW
    ).created
    assert design_publishing.publish_design(
        session, first, intro(4), "a.yaml", by("cli"), now=NOW
    ).created
    anonymous = Publisher("Anonymous user", None)
    with pytest.raises(PermissionDeniedError, match="no user id"):
        design_publishing.publish_design(
            session,
            first,
            intro(1).replace("sample-programming", "anon-design"),
            "x.yaml",
            anonymous,
            now=NOW,
        )


def test_an_owner_in_one_tenant_is_nobody_in_another(session: Session) -> None:
    first, second = tenant(session), other_tenant(session)
    design_publishing.publish_design(
        session, first, intro(1), "a.yaml", Publisher("T", "4"), now=NOW
    )
    design_publishing.publish_design(
        session, second, intro(1), "b.yaml", Publisher("U", "5"), now=NOW
    )
    with pytest.raises(PermissionDeniedError):
        design_publishing.publish_design(
            session, second, intro(2), "b.yaml", Publisher("T", "4"), now=NOW
        )


def test_import_refuses_an_id_the_tenant_has_and_renames_with_as(session: Session) -> None:
    first, second = tenant(session), other_tenant(session)
    design_publishing.publish_design(session, first, intro(1), "a.yaml", by("a"), now=NOW)
    design_publishing.publish_design(session, second, THEIRS, "b.yaml", by("b"), now=NOW)
    package = [
        (f"v{v.version}", v.source_text, v.page_bodies)
        for v in design_sharing.export_design(session, first, "sample-programming")
    ]
    with pytest.raises(ConflictError, match="already has a design 'sample-programming'"):
        design_sharing.import_design(session, second, package, by("c"), now=NOW)
    [result] = design_sharing.import_design(
        session, second, package, by("c"), now=NOW, new_id="copy"
    )
    assert result.version.design_id == "copy"
    assert (
        "design: copy" in design_publishing.get_design_version(session, second, "copy").source_text
    )
    assert not designs_repo.design_exists(session, first, "copy")


def test_an_instructor_launch_is_an_administrator_only_with_the_role(session: Session) -> None:
    admin_role = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
    assert not design_publishing.is_administrator(launch_context(roles=(INSTRUCTOR,)))
    assert design_publishing.is_administrator(launch_context(roles=(INSTRUCTOR, admin_role)))


@pytest.mark.parametrize("new_id", ["Not An Id", "x" * 65, "-leading-dash"])
def test_import_under_a_malformed_id_is_refused_and_publishes_nothing(
    session: Session, new_id: str
) -> None:
    first, second = tenant(session), other_tenant(session)
    design_publishing.publish_design(session, first, intro(1), "a.yaml", by("a"), now=NOW)
    package = [
        ("v1", v.source_text, v.page_bodies)
        for v in design_sharing.export_design(session, first, "sample-programming")
    ]
    with pytest.raises(InvalidInputError):
        design_sharing.import_design(session, second, package, by("c"), now=NOW, new_id=new_id)
    assert design_publishing.list_designs(session, second) == []
