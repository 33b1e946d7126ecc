"""Audit: an append-only record of every administrative and instructor action (who, when, which
platform registration, what, to what, details). ``registration_id`` is not a foreign key, so the
record of removing a registration outlives it.

Revision ID: 0006_audit
Revises: 0004_learner_journey
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_audit"
down_revision: str | None = "0004_learner_journey"
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


def downgrade() -> None:
    op.drop_index("ix_audit_record_registration_id_occurred_at", table_name="audit_record")
    op.drop_index(op.f("ix_audit_record_occurred_at"), table_name="audit_record")
    op.drop_index(op.f("ix_audit_record_action"), table_name="audit_record")
    op.drop_table("audit_record")
