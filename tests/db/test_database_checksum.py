"""The "nothing was written" check sees what row counts missed: an UPDATE, and a new row in a
table outside the six the old helper counted (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import BindingMethod, Tenant
from adaptive_lti.db import designs_repo, registrations_repo
from adaptive_lti.db.tables import Base, User
from adaptive_lti.services import design_publishing
from adaptive_lti.services import launch as launch_service
from tests.database_checksum import REFUSAL_RECORD_TABLES, table_checksums
from tests.design_samples import NOW, by, intro, launch_context, register_platform, tenant
from tests.lti.harness import row_counts


def test_every_table_of_the_metadata_is_summed(session: Session) -> None:
    assert set(table_checksums(session)) == set(Base.metadata.tables) - REFUSAL_RECORD_TABLES


def test_an_update_the_row_counts_missed_is_caught(session: Session) -> None:
    registration_id = register_platform(session)
    context = launch_context(subject="3", name="Student One")
    found = registrations_repo.lookup_registration(session, context.issuer, context.client_id, "1")
    assert found is not None and found.deployment is not None
    launch_service.record_launch(
        session,
        context,
        registration_id=registration_id,
        deployment_pk=found.deployment.id,
        now=NOW,
    )
    session.flush()
    counts, sums = row_counts(session), table_checksums(session)

    session.execute(update(User).values(name="Someone Else"))
    assert row_counts(session) == counts  # what the old helper compared: unchanged
    changed = table_checksums(session)
    assert changed != sums
    assert {name for name in sums if sums[name] != changed[name]} == {"lti_user"}


def test_a_row_in_a_table_the_counts_left_out_is_caught(session: Session) -> None:
    registration_id = register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), intro(1), "intro.yaml", by("tests"), now=NOW
    )
    found = registrations_repo.lookup_registration(
        session, "https://moodle.example.edu", "Xc7CLIENTIDx9", "1"
    )
    assert found is not None and found.deployment is not None
    counts, sums = row_counts(session), table_checksums(session)
    designs_repo.set_binding(
        session,
        Tenant(registration_id),
        deployment_pk=found.deployment.id,
        resource_link_id="1",
        context_id="2",
        design_id="sample-programming",
        pinned_version=None,
        bound_by="tests",
        method=BindingMethod.instructor,
        now=NOW,
    )
    session.flush()
    assert row_counts(session) == counts
    changed = table_checksums(session)
    assert {name for name in sums if sums[name] != changed[name]} == {"design_binding"}
