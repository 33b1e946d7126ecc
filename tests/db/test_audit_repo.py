"""The audit record's repository and table: entries listed by tenant or for the whole tool,
filtered by time and action; and the table refuses any UPDATE or DELETE (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from adaptive_lti.db import audit_repo
from adaptive_lti.db.audit_repo import ALL_TENANTS, Actor, AuditAction
from adaptive_lti.db.tables import AuditRecord
from tests.design_samples import NOW

TEACHER = Actor(name="Teacher One", subject="4")


def add(session: Session, action: AuditAction, tenant: int | None, minutes: int) -> None:
    audit_repo.append(
        session,
        TEACHER,
        action,
        tenant,
        "target",
        {"n": minutes},
        now=NOW + timedelta(minutes=minutes),
    )


def test_listing_takes_the_tenant_and_narrows_by_time_and_action(session: Session) -> None:
    add(session, AuditAction.key_rotate, None, 0)
    add(session, AuditAction.learner_move, 1, 1)
    add(session, AuditAction.learner_reset, 2, 2)
    add(session, AuditAction.learner_move, 1, 3)

    def listed(tenant: audit_repo.Tenant, **narrow: object) -> list[tuple[str, int | None, int]]:
        entries = audit_repo.list_entries(session, tenant, **narrow)  # type: ignore[arg-type]
        return [(e.action, e.registration_id, e.details["n"]) for e in entries]

    assert listed(ALL_TENANTS) == [
        ("key.rotate", None, 0),
        ("learner.move", 1, 1),
        ("learner.reset", 2, 2),
        ("learner.move", 1, 3),
    ]
    assert listed(1) == [("learner.move", 1, 1), ("learner.move", 1, 3)]
    assert listed(3) == []
    assert listed(ALL_TENANTS, since=NOW + timedelta(minutes=2)) == [
        ("learner.reset", 2, 2),
        ("learner.move", 1, 3),
    ]
    assert listed(ALL_TENANTS, actions=("learner.reset", "key.rotate")) == [
        ("key.rotate", None, 0),
        ("learner.reset", 2, 2),
    ]
    assert listed(ALL_TENANTS, limit=2) == [("learner.reset", 2, 2), ("learner.move", 1, 3)]
    [entry] = audit_repo.list_entries(session, 2)
    assert entry.actor == TEACHER and entry.occurred_at == NOW + timedelta(minutes=2)


def test_the_actor_of_a_transaction_is_used_for_services_that_know_only_a_name(
    session: Session,
) -> None:
    assert audit_repo.acting(session, "tests") == Actor(name="tests")
    audit_repo.act_as(session, TEACHER)
    assert audit_repo.acting(session, "tests") == TEACHER


@pytest.mark.parametrize("change", ["update", "delete"])
def test_records_cannot_be_changed_or_deleted(session: Session, change: str) -> None:
    add(session, AuditAction.key_rotate, None, 0)
    statement = (
        update(AuditRecord).values(actor_name="someone else")
        if change == "update"
        else delete(AuditRecord)
    )
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(statement)
    [entry] = audit_repo.list_entries(session, ALL_TENANTS)
    assert entry.actor == TEACHER
