"""Learner journey: enrolments (a learner on an activity's design version), the append-only
event log (unique per enrolment and sequence: two requests cannot both append) and the snapshot
derived from it.

Revision ID: 0004_learner_journey
Revises: 0003_designs
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_learner_journey"
down_revision: str | None = "0003_designs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learner_enrolment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.Integer(), nullable=True),
        sa.Column("resource_link_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_sub", sa.String(length=255), nullable=False),
        sa.Column("binding_id", sa.Integer(), nullable=True),
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("design_version", sa.Integer(), nullable=False),
        sa.Column("ags_endpoint", sa.JSON(), nullable=True),
        sa.Column("locale", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_launch_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["binding_id"],
            ["design_binding.id"],
            name=op.f("fk_learner_enrolment_binding_id_design_binding"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["context_id"],
            ["lti_context.id"],
            name=op.f("fk_learner_enrolment_context_id_lti_context"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lti_deployment.id"],
            name=op.f("fk_learner_enrolment_deployment_id_lti_deployment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["design_id"],
            ["design.design_id"],
            name=op.f("fk_learner_enrolment_design_id_design"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_learner_enrolment_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_link_id"],
            ["lti_resource_link.id"],
            name=op.f("fk_learner_enrolment_resource_link_id_lti_resource_link"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["lti_user.id"],
            name=op.f("fk_learner_enrolment_user_id_lti_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learner_enrolment")),
        sa.UniqueConstraint(
            "resource_link_id",
            "user_id",
            "design_id",
            name=op.f("uq_learner_enrolment_resource_link_id_user_id_design_id"),
        ),
    )
    op.create_index(
        op.f("ix_learner_enrolment_binding_id"), "learner_enrolment", ["binding_id"], unique=False
    )
    op.create_index(
        op.f("ix_learner_enrolment_context_id"), "learner_enrolment", ["context_id"], unique=False
    )
    op.create_index(
        op.f("ix_learner_enrolment_deployment_id"),
        "learner_enrolment",
        ["deployment_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_learner_enrolment_design_id"), "learner_enrolment", ["design_id"], unique=False
    )
    op.create_index(
        op.f("ix_learner_enrolment_registration_id"),
        "learner_enrolment",
        ["registration_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_learner_enrolment_resource_link_id"),
        "learner_enrolment",
        ["resource_link_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_learner_enrolment_user_id"), "learner_enrolment", ["user_id"], unique=False
    )

    op.create_table(
        "learner_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("design_version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decision_kind", sa.String(length=16), nullable=False),
        sa.Column("decision_rule", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["learner_enrolment.id"],
            name=op.f("fk_learner_event_enrolment_id_learner_enrolment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learner_event")),
        sa.UniqueConstraint(
            "enrolment_id", "sequence", name=op.f("uq_learner_event_enrolment_id_sequence")
        ),
    )
    op.create_index(
        op.f("ix_learner_event_enrolment_id"), "learner_event", ["enrolment_id"], unique=False
    )
    op.create_index(
        op.f("ix_learner_event_occurred_at"), "learner_event", ["occurred_at"], unique=False
    )

    op.create_table(
        "learner_snapshot",
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("decision_kind", sa.String(length=16), nullable=False),
        sa.Column("activity", sa.String(length=64), nullable=True),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("needs_help", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("grade", sa.Float(), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["learner_enrolment.id"],
            name=op.f("fk_learner_snapshot_enrolment_id_learner_enrolment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enrolment_id", name=op.f("pk_learner_snapshot")),
    )
    op.create_index(
        op.f("ix_learner_snapshot_updated_at"), "learner_snapshot", ["updated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_learner_snapshot_updated_at"), table_name="learner_snapshot")

    op.drop_table("learner_snapshot")
    op.drop_index(op.f("ix_learner_event_occurred_at"), table_name="learner_event")
    op.drop_index(op.f("ix_learner_event_enrolment_id"), table_name="learner_event")

    op.drop_table("learner_event")
    op.drop_index(op.f("ix_learner_enrolment_user_id"), table_name="learner_enrolment")
    op.drop_index(op.f("ix_learner_enrolment_resource_link_id"), table_name="learner_enrolment")
    op.drop_index(op.f("ix_learner_enrolment_registration_id"), table_name="learner_enrolment")
    op.drop_index(op.f("ix_learner_enrolment_design_id"), table_name="learner_enrolment")
    op.drop_index(op.f("ix_learner_enrolment_deployment_id"), table_name="learner_enrolment")
    op.drop_index(op.f("ix_learner_enrolment_context_id"), table_name="learner_enrolment")
    op.drop_index(op.f("ix_learner_enrolment_binding_id"), table_name="learner_enrolment")

    op.drop_table("learner_enrolment")
