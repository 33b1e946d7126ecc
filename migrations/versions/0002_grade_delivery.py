"""Grade delivery and roster: line items, the score outbox, cached service access tokens and the
course members synced through NRPS.

Revision ID: 0002_grade_delivery
Revises: 0001_lti_core
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_grade_delivery"
down_revision: str | None = "0001_lti_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_line_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("resource_link_id", sa.Integer(), nullable=True),
        sa.Column("binding_key", sa.String(length=64), nullable=False),
        sa.Column("lineitems_url", sa.Text(), nullable=True),
        sa.Column("lineitem_url", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.Column("platform_resource_link_id", sa.String(length=255), nullable=True),
        sa.Column("granted_scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_line_item_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_link_id"],
            ["lti_resource_link.id"],
            name=op.f("fk_lti_line_item_resource_link_id_lti_resource_link"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_line_item")),
        sa.UniqueConstraint(
            "registration_id",
            "binding_key",
            name=op.f("uq_lti_line_item_registration_id_binding_key"),
        ),
    )
    op.create_index(op.f("ix_lti_line_item_registration_id"), "lti_line_item", ["registration_id"])
    op.create_index(
        op.f("ix_lti_line_item_resource_link_id"), "lti_line_item", ["resource_link_id"]
    )

    op.create_table(
        "lti_score_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("line_item_id", sa.Integer(), nullable=False),
        sa.Column("user_sub", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["line_item_id"],
            ["lti_line_item.id"],
            name=op.f("fk_lti_score_outbox_line_item_id_lti_line_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_score_outbox_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_score_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_lti_score_outbox_dedupe_key")),
    )
    op.create_index(op.f("ix_lti_score_outbox_line_item_id"), "lti_score_outbox", ["line_item_id"])
    op.create_index(
        op.f("ix_lti_score_outbox_registration_id"), "lti_score_outbox", ["registration_id"]
    )
    # The worker's query: due pending rows, oldest first.
    op.create_index(
        "ix_lti_score_outbox_status_next_attempt_at",
        "lti_score_outbox",
        ["status", "next_attempt_at"],
    )

    op.create_table(
        "lti_service_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.String(length=1024), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_service_token_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_service_token")),
        sa.UniqueConstraint(
            "registration_id", "scopes", name=op.f("uq_lti_service_token_registration_id_scopes")
        ),
    )
    op.create_index(
        op.f("ix_lti_service_token_registration_id"), "lti_service_token", ["registration_id"]
    )

    op.create_table(
        "lti_roster_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.Integer(), nullable=False),
        sa.Column("user_sub", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("given_name", sa.Text(), nullable=True),
        sa.Column("family_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("lis_person_sourcedid", sa.Text(), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("roles_short", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["context_id"],
            ["lti_context.id"],
            name=op.f("fk_lti_roster_member_context_id_lti_context"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_roster_member_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_roster_member")),
        sa.UniqueConstraint(
            "context_id", "user_sub", name=op.f("uq_lti_roster_member_context_id_user_sub")
        ),
    )
    op.create_index(op.f("ix_lti_roster_member_context_id"), "lti_roster_member", ["context_id"])
    op.create_index(
        op.f("ix_lti_roster_member_registration_id"), "lti_roster_member", ["registration_id"]
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; the outbox before the line items it points to.
    op.drop_table("lti_roster_member")
    op.drop_table("lti_service_token")
    op.drop_table("lti_score_outbox")
    op.drop_table("lti_line_item")
