"""LTI core: platform registrations, deployments, tool keys, OIDC login state, users, contexts,
resource links and launches.

Revision ID: 0001_lti_core
Revises: (none, the first revision)
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_lti_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_registration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("auth_login_url", sa.Text(), nullable=False),
        sa.Column("auth_token_url", sa.Text(), nullable=False),
        sa.Column("auth_token_audience", sa.Text(), nullable=True),
        sa.Column("jwks_url", sa.Text(), nullable=True),
        sa.Column("static_jwks", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("jwks_cache", sa.Text(), nullable=True),
        sa.Column("jwks_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("jwks_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("jwks_forced_refetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_registration")),
        sa.UniqueConstraint(
            "issuer", "client_id", name=op.f("uq_lti_registration_issuer_client_id")
        ),
    )
    op.create_table(
        "lti_tool_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_key_pem", sa.Text(), nullable=True),
        sa.Column("private_key_path", sa.Text(), nullable=True),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_lti_tool_key")),
    )
    op.create_table(
        "lti_deployment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_deployment_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_deployment")),
        sa.UniqueConstraint(
            "registration_id",
            "deployment_id",
            name=op.f("uq_lti_deployment_registration_id_deployment_id"),
        ),
    )
    op.create_index(
        op.f("ix_lti_deployment_registration_id"),
        "lti_deployment",
        ["registration_id"],
        unique=False,
    )

    op.create_table(
        "lti_login_state",
        sa.Column("state", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("target_link_uri", sa.Text(), nullable=False),
        sa.Column("login_hint", sa.Text(), nullable=False),
        sa.Column("lti_message_hint", sa.Text(), nullable=True),
        sa.Column("deployment_hint", sa.String(length=255), nullable=True),
        sa.Column("storage_target", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_login_state_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_lti_login_state")),
    )
    op.create_index(
        op.f("ix_lti_login_state_expires_at"), "lti_login_state", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_lti_login_state_registration_id"),
        "lti_login_state",
        ["registration_id"],
        unique=False,
    )

    op.create_table(
        "lti_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("given_name", sa.Text(), nullable=True),
        sa.Column("family_name", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("person_sourcedid", sa.Text(), nullable=True),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_user_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_user")),
        sa.UniqueConstraint(
            "registration_id", "subject", name=op.f("uq_lti_user_registration_id_subject")
        ),
    )
    op.create_index(
        op.f("ix_lti_user_registration_id"), "lti_user", ["registration_id"], unique=False
    )

    op.create_table(
        "lti_context",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.String(length=255), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lti_deployment.id"],
            name=op.f("fk_lti_context_deployment_id_lti_deployment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_context")),
        sa.UniqueConstraint(
            "deployment_id", "context_id", name=op.f("uq_lti_context_deployment_id_context_id")
        ),
    )
    op.create_index(
        op.f("ix_lti_context_deployment_id"), "lti_context", ["deployment_id"], unique=False
    )

    op.create_table(
        "lti_resource_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.Integer(), nullable=True),
        sa.Column("resource_link_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["context_id"],
            ["lti_context.id"],
            name=op.f("fk_lti_resource_link_context_id_lti_context"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lti_deployment.id"],
            name=op.f("fk_lti_resource_link_deployment_id_lti_deployment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_resource_link")),
        sa.UniqueConstraint(
            "deployment_id",
            "resource_link_id",
            name=op.f("uq_lti_resource_link_deployment_id_resource_link_id"),
        ),
    )
    op.create_index(
        op.f("ix_lti_resource_link_context_id"), "lti_resource_link", ["context_id"], unique=False
    )
    op.create_index(
        op.f("ix_lti_resource_link_deployment_id"),
        "lti_resource_link",
        ["deployment_id"],
        unique=False,
    )

    op.create_table(
        "lti_launch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("context_id", sa.Integer(), nullable=True),
        sa.Column("resource_link_id", sa.Integer(), nullable=True),
        sa.Column("message_type", sa.String(length=64), nullable=False),
        sa.Column("target_link_uri", sa.Text(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("roles_short", sa.JSON(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=False),
        sa.Column("locale", sa.String(length=64), nullable=True),
        sa.Column("ags_endpoint", sa.JSON(), nullable=True),
        sa.Column("nrps", sa.JSON(), nullable=True),
        sa.Column("deep_linking_settings", sa.JSON(), nullable=True),
        sa.Column("basic_outcome", sa.JSON(), nullable=True),
        sa.Column("ext", sa.JSON(), nullable=True),
        sa.Column("tool_platform", sa.JSON(), nullable=True),
        sa.Column("launch_presentation", sa.JSON(), nullable=True),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["context_id"],
            ["lti_context.id"],
            name=op.f("fk_lti_launch_context_id_lti_context"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lti_deployment.id"],
            name=op.f("fk_lti_launch_deployment_id_lti_deployment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_lti_launch_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_link_id"],
            ["lti_resource_link.id"],
            name=op.f("fk_lti_launch_resource_link_id_lti_resource_link"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["lti_user.id"],
            name=op.f("fk_lti_launch_user_id_lti_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_launch")),
    )
    op.create_index(op.f("ix_lti_launch_context_id"), "lti_launch", ["context_id"], unique=False)
    op.create_index(
        op.f("ix_lti_launch_deployment_id"), "lti_launch", ["deployment_id"], unique=False
    )
    op.create_index(op.f("ix_lti_launch_launched_at"), "lti_launch", ["launched_at"], unique=False)
    op.create_index(
        op.f("ix_lti_launch_registration_id"), "lti_launch", ["registration_id"], unique=False
    )
    op.create_index(
        op.f("ix_lti_launch_resource_link_id"), "lti_launch", ["resource_link_id"], unique=False
    )
    op.create_index(op.f("ix_lti_launch_user_id"), "lti_launch", ["user_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; children first, for the foreign keys.
    op.drop_table("lti_launch")
    op.drop_table("lti_resource_link")
    op.drop_table("lti_context")
    op.drop_table("lti_user")
    op.drop_table("lti_login_state")
    op.drop_table("lti_deployment")
    op.drop_table("lti_tool_key")
    op.drop_table("lti_registration")
