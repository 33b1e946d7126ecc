"""Revision 0005_tenancy on a database made at 0004 with data in it (SQLite and PostgreSQL):
two platforms sharing a design, one design nobody uses. Upgrade gives each its own copy and
keeps every activity, enrolment and event; downgrade merges copies that agree and refuses,
changing nothing, when they do not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SHARED = "intro-programming"
UNUSED = "reading-club"


def insert(connection: sa.Connection, table: str, **values: Any) -> None:
    def column(name: str, value: Any) -> sa.ColumnClause[Any]:
        if isinstance(value, dict | list):
            return sa.column(name, sa.JSON)
        if isinstance(value, datetime):
            return sa.column(name, sa.DateTime(timezone=True))
        return sa.column(name)

    clause = sa.table(table, *(column(name, value) for name, value in values.items()))
    connection.execute(sa.insert(clause).values(**values))


def version_row(design_id: str, version: int, by: str, digest: str) -> dict[str, Any]:
    return {
        "design_id": design_id,
        "version": version,
        "title": f"{design_id} v{version}",
        "source": f"design: {design_id}\nversion: {version}\n",
        "page_bodies": {},
        "content_hash": digest,
        "lint_summary": {"errors": 0, "warnings": 0, "messages": []},
        "sends_grade": False,
        "published_at": NOW,
        "published_by": by,
    }


def fill_at_0004(engine: Engine) -> None:
    with engine.begin() as db:
        for pk in (1, 2):
            insert(
                db,
                "lti_registration",
                id=pk,
                issuer=f"https://platform{pk}.example.edu",
                client_id="tool",
                name=f"Platform {pk}",
                auth_login_url="https://x/auth",
                auth_token_url="https://x/token",
                jwks_url="https://x/certs",
                status="active",
                created_at=NOW,
            )
            insert(
                db,
                "lti_deployment",
                id=pk,
                registration_id=pk,
                deployment_id="1",
                active=True,
                created_at=NOW,
            )
            insert(
                db,
                "lti_user",
                id=pk,
                registration_id=pk,
                subject=str(3 + pk),  # "4" on platform 1, "5" on platform 2
                first_seen_at=NOW,
                last_seen_at=NOW,
            )
            insert(
                db,
                "lti_resource_link",
                id=pk,
                deployment_id=pk,
                resource_link_id="activity",
                first_seen_at=NOW,
                last_seen_at=NOW,
            )
        insert(db, "design", design_id=SHARED, title="Intro", created_at=NOW, updated_at=NOW)
        insert(db, "design", design_id=UNUSED, title="Club", created_at=NOW, updated_at=NOW)
        insert(db, "design_version", **version_row(SHARED, 1, "Teacher One (user 4, LTI 101)", "a"))
        insert(db, "design_version", **version_row(SHARED, 2, "designer", "b"))
        insert(db, "design_version", **version_row(UNUSED, 1, "designer", "c"))
        # Platform 1 binds the shared design; platform 2 has a learner on it (and a log).
        insert(
            db,
            "design_binding",
            registration_id=1,
            deployment_id=1,
            resource_link_id="activity",
            design_id=SHARED,
            bound_by="Teacher One",
            method="instructor",
            bound_at=NOW,
        )
        insert(
            db,
            "learner_enrolment",
            id=1,
            registration_id=2,
            deployment_id=2,
            resource_link_id=2,
            user_id=2,
            user_sub="5",
            design_id=SHARED,
            design_version=1,
            started_at=NOW,
            last_launch_at=NOW,
        )
        for sequence in range(3):
            insert(
                db,
                "learner_event",
                enrolment_id=1,
                sequence=sequence,
                event_type="launched",
                payload={"type": "launched"},
                design_version=1,
                occurred_at=NOW,
                decision_kind="activity",
                decision_rule="start",
            )
        insert(
            db,
            "learner_snapshot",
            enrolment_id=1,
            state={},
            decision={},
            decision_kind="activity",
            flags=[],
            needs_help=False,
            progress=0.0,
            completed=False,
            event_count=3,
            updated_at=NOW,
        )


def rows(engine: Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as db:
        return sorted(tuple(row) for row in db.execute(sa.text(query)))


def kept_learner_data(engine: Engine) -> None:
    assert rows(engine, "SELECT count(*) FROM learner_event") == [(3,)]
    assert rows(engine, "SELECT count(*) FROM learner_snapshot") == [(1,)]
    assert rows(engine, "SELECT registration_id, design_id FROM design_binding") == [(1, SHARED)]
    assert rows(engine, "SELECT registration_id, design_id FROM learner_enrolment") == [(2, SHARED)]


@pytest.fixture
def at_0004(new_database_url, backend: str):  # type: ignore[no-untyped-def]
    url: str = new_database_url(backend)
    migrate.upgrade(url, "0004_learner_journey")
    engine = make_engine(url)
    fill_at_0004(engine)
    yield url, engine
    engine.dispose()


def test_upgrade_copies_shared_designs_per_platform_and_keeps_every_activity(
    at_0004: tuple[str, Engine],
) -> None:
    url, engine = at_0004
    migrate.upgrade(url)
    migrate.check(url)
    assert rows(engine, "SELECT registration_id, design_id FROM design") == [
        (1, SHARED),
        (1, UNUSED),
        (2, SHARED),
        (2, UNUSED),
    ]
    assert rows(engine, "SELECT registration_id, design_id, version FROM design_version") == [
        (1, SHARED, 1),
        (1, SHARED, 2),
        (1, UNUSED, 1),
        (2, SHARED, 1),
        (2, SHARED, 2),
        (2, UNUSED, 1),
    ]
    # The publisher the web page recorded is a user of platform 1 only: owner there.
    assert rows(engine, "SELECT registration_id, design_id, subject FROM design_owner") == [
        (1, SHARED, "4")
    ]
    kept_learner_data(engine)
    # The composite foreign keys hold: a platform's removal takes its copies and activities.
    with engine.begin() as db:
        if engine.dialect.name == "sqlite":
            db.exec_driver_sql("PRAGMA foreign_keys=ON")
        db.execute(sa.text("DELETE FROM lti_registration WHERE id = 2"))
    assert rows(engine, "SELECT registration_id, design_id FROM design") == [
        (1, SHARED),
        (1, UNUSED),
    ]
    assert rows(engine, "SELECT count(*) FROM learner_event") == [(0,)]


def test_downgrade_merges_copies_that_agree(at_0004: tuple[str, Engine]) -> None:
    url, engine = at_0004
    migrate.upgrade(url)
    migrate.downgrade(url, "0004_learner_journey")
    assert rows(engine, "SELECT design_id FROM design") == [(SHARED,), (UNUSED,)]
    assert rows(engine, "SELECT design_id, version, content_hash FROM design_version") == [
        (SHARED, 1, "a"),
        (SHARED, 2, "b"),
        (UNUSED, 1, "c"),
    ]
    kept_learner_data(engine)
    migrate.upgrade(url)
    migrate.check(url)
    kept_learner_data(engine)


def test_downgrade_refuses_when_two_platforms_published_different_content_under_one_version(
    at_0004: tuple[str, Engine],
) -> None:
    url, engine = at_0004
    migrate.upgrade(url, "0005_tenancy")
    with engine.begin() as db:
        db.execute(
            sa.text(
                "UPDATE design_version SET content_hash = 'theirs' "
                "WHERE registration_id = 2 AND design_id = :id AND version = 2"
            ),
            {"id": SHARED},
        )
    with pytest.raises(RuntimeError, match=rf"different content as {SHARED} version 2"):
        migrate.downgrade(url, "0004_learner_journey")
    # Nothing changed: still at 0005 with both copies.
    assert rows(engine, "SELECT version_num FROM alembic_version") == [("0005_tenancy",)]
    assert len(rows(engine, "SELECT registration_id FROM design")) == 4
    kept_learner_data(engine)


def test_upgrade_refuses_designs_with_no_platform_to_go_to(new_database_url, backend: str) -> None:  # type: ignore[no-untyped-def]
    url: str = new_database_url(backend)
    migrate.upgrade(url, "0004_learner_journey")
    engine = make_engine(url)
    try:
        with engine.begin() as db:
            insert(db, "design", design_id=UNUSED, title="Club", created_at=NOW, updated_at=NOW)
        with pytest.raises(RuntimeError, match="no platform is registered"):
            migrate.upgrade(url)
        assert rows(engine, "SELECT version_num FROM alembic_version") == [
            ("0004_learner_journey",)
        ]
        assert rows(engine, "SELECT design_id FROM design") == [(UNUSED,)]
    finally:
        engine.dispose()
