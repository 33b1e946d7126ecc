"""Tenancy: every design belongs to one platform registration (the tenant), with its owners.

``design`` is keyed by (registration_id, design_id); its versions, the activities bound to it
(``design_binding``), deep-link offers and learner enrolments point at it by that pair, and
``design_owner`` lists the platform users who may publish new versions of it.

Existing data: each design is given to every registration whose activities use it (bindings,
deep-link offers, enrolments), copied for each when several do, so every activity keeps running
exactly what it ran and each tenant's copy then lives its own life. A design no activity uses
goes to **every** registration: before this revision every platform could list, bind and launch
it, and nothing records who published it for which platform (``published_by`` is free text), so
giving it to one would take it away from the others without a reason; an administrator deletes
or keeps each copy afterwards. A version's publisher, when ``published_by`` names a platform user
("Name (user SUB, ...)", as the web pages write it) known to the tenant, becomes an owner of that
tenant's copy; otherwise only the tenant's administrators (and the command line) publish new
versions until someone is made owner. Designs with no registration at all to go to refuse the
upgrade, with what to do, rather than be dropped.

Downgrade merges the tenants' copies back into one global design per id. It refuses, and says
which, when two tenants published different content under the same id and version (they cannot
become one design); copies that agree (as the upgrade made them) merge. Owners are dropped.

On SQLite a foreign key cannot be altered: the child tables are rebuilt, and a rebuilt table is
dropped, which with foreign keys on would delete its children (an enrolment's events) by ON DELETE
CASCADE. Foreign keys are therefore off while this revision runs there, in a transaction of its
own, and ``PRAGMA foreign_key_check`` must find nothing before it commits.

Revision ID: 0005_tenancy
Revises: 0004_learner_journey
Create Date: 2026-12-04
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005_tenancy"
down_revision: str | None = "0004_learner_journey"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILDREN = ("design_binding", "design_deep_link", "learner_enrolment")
TIMESTAMP = sa.DateTime(timezone=True)
# How the tool's pages write a publisher: "Teacher One (user 4, LTI 101)".
PUBLISHER_SUBJECT = re.compile(r"^(?P<name>.*?) \(user (?P<subject>[^,)]+)")

registration = sa.table("lti_registration", sa.column("id", sa.Integer))
lti_user = sa.table(
    "lti_user", sa.column("registration_id", sa.Integer), sa.column("subject", sa.String)
)
design_old = sa.table(
    "design",
    sa.column("design_id", sa.String),
    sa.column("title", sa.Text),
    sa.column("created_at", TIMESTAMP),
    sa.column("updated_at", TIMESTAMP),
)
design_new = sa.table(
    "design",
    sa.column("registration_id", sa.Integer),
    sa.column("design_id", sa.String),
    sa.column("title", sa.Text),
    sa.column("created_at", TIMESTAMP),
    sa.column("updated_at", TIMESTAMP),
)


def _version_columns() -> list[sa.ColumnClause[Any]]:
    return [
        sa.column("design_id", sa.String),
        sa.column("version", sa.Integer),
        sa.column("title", sa.Text),
        sa.column("source", sa.Text),
        sa.column("page_bodies", sa.JSON),
        sa.column("content_hash", sa.String),
        sa.column("lint_summary", sa.JSON),
        sa.column("sends_grade", sa.Boolean),
        sa.column("published_at", TIMESTAMP),
        sa.column("published_by", sa.String),
    ]


version_old = sa.table("design_version", *_version_columns())
version_new = sa.table(
    "design_version", sa.column("registration_id", sa.Integer), *_version_columns()
)
owner = sa.table(
    "design_owner",
    sa.column("registration_id", sa.Integer),
    sa.column("design_id", sa.String),
    sa.column("subject", sa.String),
    sa.column("name", sa.Text),
    sa.column("granted_at", TIMESTAMP),
)


def _sqlite(bind: sa.Connection) -> bool:
    return bind.dialect.name == "sqlite"


def _foreign_keys_off(bind: sa.Connection) -> None:
    """SQLite only: see the module docstring. PRAGMA foreign_keys is ignored inside a
    transaction, so the revisions before this one are committed first and this one runs in a
    transaction of its own (which SQLAlchemy then commits or rolls back as usual)."""
    if not _sqlite(bind):
        return
    raw = bind.connection.driver_connection
    assert raw is not None
    raw.execute("COMMIT")
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("BEGIN IMMEDIATE")


def _check_foreign_keys(bind: sa.Connection) -> None:
    if not _sqlite(bind):
        return
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(
            f"0005_tenancy left rows whose foreign keys point nowhere: {broken[:5]}; nothing "
            "was changed (the revision is rolled back). Report this with the rows named."
        )


def _users_of(bind: sa.Connection) -> set[tuple[int, str]]:
    return {(row[0], row[1]) for row in bind.execute(sa.select(lti_user))}


def upgrade() -> None:
    bind = op.get_bind()
    _foreign_keys_off(bind)
    designs = [dict(row._mapping) for row in bind.execute(sa.select(design_old))]
    versions = [dict(row._mapping) for row in bind.execute(sa.select(version_old))]
    registrations = sorted(row[0] for row in bind.execute(sa.select(registration)))
    used: dict[str, set[int]] = defaultdict(set)
    for child in CHILDREN:
        table = sa.table(
            child, sa.column("design_id", sa.String), sa.column("registration_id", sa.Integer)
        )
        for design_id, registration_id in bind.execute(
            sa.select(table.c.design_id, table.c.registration_id).distinct()
        ):
            used[design_id].add(registration_id)
    if designs and not registrations:
        raise RuntimeError(
            f"{len(designs)} design(s) are published but no platform is registered, so they "
            "belong to no tenant: register the platform they are for ('adaptive-lti platform "
            "add ...') and upgrade again. Nothing was changed."
        )
    users = _users_of(bind)

    for child in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.drop_constraint(f"fk_{child}_design_id_design", type_="foreignkey")
    op.drop_index(op.f("ix_design_version_design_id"), table_name="design_version")
    op.drop_table("design_version")
    op.drop_table("design")

    op.create_table(
        "design",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_design_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registration_id", "design_id", name=op.f("pk_design")),
    )
    op.create_table(
        "design_owner",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("granted_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id", "design_id"],
            ["design.registration_id", "design.design_id"],
            name=op.f("fk_design_owner_registration_id_design"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "registration_id", "design_id", "subject", name=op.f("pk_design_owner")
        ),
    )
    op.create_table(
        "design_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("page_bodies", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("lint_summary", sa.JSON(), nullable=False),
        sa.Column("sends_grade", sa.Boolean(), nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=False),
        sa.Column("published_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id", "design_id"],
            ["design.registration_id", "design.design_id"],
            name=op.f("fk_design_version_registration_id_design"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_version")),
        sa.UniqueConstraint(
            "registration_id",
            "design_id",
            "version",
            name=op.f("uq_design_version_registration_id_design_id_version"),
        ),
    )

    new_designs: list[dict[str, Any]] = []
    new_versions: list[dict[str, Any]] = []
    owners: dict[tuple[int, str, str], dict[str, Any]] = {}
    for design in designs:
        tenants = sorted(used.get(design["design_id"]) or registrations)
        for tenant in tenants:
            new_designs.append({**design, "registration_id": tenant})
            for version in versions:
                if version["design_id"] != design["design_id"]:
                    continue
                new_versions.append({**version, "registration_id": tenant})
                publisher = PUBLISHER_SUBJECT.match(version["published_by"] or "")
                if publisher and (tenant, publisher["subject"]) in users:
                    key = (tenant, design["design_id"], publisher["subject"])
                    owners.setdefault(
                        key,
                        {
                            "registration_id": tenant,
                            "design_id": design["design_id"],
                            "subject": publisher["subject"],
                            "name": publisher["name"],
                            "granted_at": version["published_at"],
                        },
                    )
    if new_designs:
        op.bulk_insert(design_new, new_designs)
    if new_versions:
        op.bulk_insert(version_new, new_versions)
    if owners:
        op.bulk_insert(owner, list(owners.values()))

    for child in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.create_foreign_key(
                f"fk_{child}_registration_id_design",
                "design",
                ["registration_id", "design_id"],
                ["registration_id", "design_id"],
                ondelete="CASCADE",
            )
    _check_foreign_keys(bind)


def downgrade() -> None:
    bind = op.get_bind()
    _foreign_keys_off(bind)
    designs = [dict(row._mapping) for row in bind.execute(sa.select(design_new))]
    versions = [dict(row._mapping) for row in bind.execute(sa.select(version_new))]
    hashes: dict[tuple[str, int], set[str]] = defaultdict(set)
    for version in versions:
        hashes[(version["design_id"], version["version"])].add(version["content_hash"])
    clashes = sorted(
        f"{design_id} version {number}"
        for (design_id, number), found in hashes.items()
        if len(found) > 1
    )
    if clashes:
        raise RuntimeError(
            "Cannot go back to one design catalogue for all platforms: different platforms "
            f"published different content as {', '.join(clashes)}. Delete or rename one "
            "tenant's design of each (export it first with 'adaptive-lti design export') and "
            "downgrade again. Nothing was changed."
        )
    merged: dict[str, dict[str, Any]] = {}
    for design in sorted(designs, key=lambda row: row["registration_id"]):
        row = merged.setdefault(design["design_id"], {**design})
        row["created_at"] = min(row["created_at"], design["created_at"])
        row["updated_at"] = max(row["updated_at"], design["updated_at"])
    one_each: dict[tuple[str, int], dict[str, Any]] = {}
    for version in sorted(versions, key=lambda row: row["registration_id"]):
        one_each.setdefault((version["design_id"], version["version"]), version)
    newest: dict[str, dict[str, Any]] = {}
    for version in one_each.values():
        if version["version"] >= newest.get(version["design_id"], {"version": -1})["version"]:
            newest[version["design_id"]] = version
    for design_id, row in merged.items():
        if design_id in newest:
            row["title"] = newest[design_id]["title"]

    for child in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.drop_constraint(f"fk_{child}_registration_id_design", type_="foreignkey")
    op.drop_table("design_version")
    op.drop_table("design_owner")
    op.drop_table("design")
    op.create_table(
        "design",
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("design_id", name=op.f("pk_design")),
    )
    op.create_table(
        "design_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("page_bodies", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("lint_summary", sa.JSON(), nullable=False),
        sa.Column("sends_grade", sa.Boolean(), nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=False),
        sa.Column("published_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"],
            ["design.design_id"],
            name=op.f("fk_design_version_design_id_design"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_version")),
        sa.UniqueConstraint(
            "design_id", "version", name=op.f("uq_design_version_design_id_version")
        ),
    )
    op.create_index(
        op.f("ix_design_version_design_id"), "design_version", ["design_id"], unique=False
    )
    if merged:
        op.bulk_insert(
            design_old,
            [{k: v for k, v in row.items() if k != "registration_id"} for row in merged.values()],
        )
    if one_each:
        op.bulk_insert(
            version_old,
            [{k: v for k, v in row.items() if k != "registration_id"} for row in one_each.values()],
        )
    for child in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.create_foreign_key(
                f"fk_{child}_design_id_design",
                "design",
                ["design_id"],
                ["design_id"],
                ondelete="CASCADE",
            )
    _check_foreign_keys(bind)
