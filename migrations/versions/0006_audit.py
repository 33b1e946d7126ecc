"""Audit: an append-only record of every administrative and instructor action (who, when, which
platform registration, what, to what, details). ``registration_id`` is not a foreign key, so the
record of removing a registration outlives it.

Revision ID: 0006_audit
Revises: 0005_tenancy
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_audit"
down_revision: str | None = "0005_tenancy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_subject", sa.String(length=255), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_record")),
    )
    op.create_index(op.f("ix_audit_record_action"), "audit_record", ["action"], unique=False)
    op.create_index(
        op.f("ix_audit_record_occurred_at"), "audit_record", ["occurred_at"], unique=False
    )
    op.create_index(
        "ix_audit_record_registration_id_occurred_at",
        "audit_record",
        ["registration_id", "occurred_at"],
        unique=False,
    )
    _refuse_changes()


# Append-only in the database itself, not only by the repository's manners: an UPDATE or DELETE
# of a record fails, whoever sends it.
REFUSAL = "audit records are append-only: they cannot be changed or deleted"


def _refuse_changes() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_record_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record "
            "FOR EACH ROW EXECUTE FUNCTION audit_record_refuse_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_record_no_{event.lower()} BEFORE {event} ON audit_record "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def _allow_changes() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_record_append_only ON audit_record")
        op.execute("DROP FUNCTION audit_record_refuse_change()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_record_no_{event}")


def downgrade() -> None:
    _allow_changes()
    op.drop_index("ix_audit_record_registration_id_occurred_at", table_name="audit_record")
    op.drop_index(op.f("ix_audit_record_occurred_at"), table_name="audit_record")
    op.drop_index(op.f("ix_audit_record_action"), table_name="audit_record")
    op.drop_table("audit_record")
