"""Designs: the catalogue of published design versions, resource-link bindings, deep-link offers.

Revision ID: 0003_designs
Revises: 0002_grade_delivery
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_designs"
down_revision: str | None = "0002_grade_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "design",
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
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
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
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
    op.create_table(
        "design_binding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("resource_link_id", sa.String(length=255), nullable=False),
        sa.Column("context_id", sa.String(length=255), nullable=True),
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("pinned_version", sa.Integer(), nullable=True),
        sa.Column("bound_by", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lti_deployment.id"],
            name=op.f("fk_design_binding_deployment_id_lti_deployment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["design_id"],
            ["design.design_id"],
            name=op.f("fk_design_binding_design_id_design"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_design_binding_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_binding")),
        sa.UniqueConstraint(
            "deployment_id",
            "resource_link_id",
            name=op.f("uq_design_binding_deployment_id_resource_link_id"),
        ),
    )
    op.create_index(
        op.f("ix_design_binding_deployment_id"), "design_binding", ["deployment_id"], unique=False
    )
    op.create_index(
        op.f("ix_design_binding_design_id"), "design_binding", ["design_id"], unique=False
    )
    op.create_index(
        op.f("ix_design_binding_registration_id"),
        "design_binding",
        ["registration_id"],
        unique=False,
    )
    op.create_table(
        "design_deep_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.String(length=255), nullable=True),
        sa.Column("design_id", sa.String(length=64), nullable=False),
        sa.Column("pinned_version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lti_deployment.id"],
            name=op.f("fk_design_deep_link_deployment_id_lti_deployment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["design_id"],
            ["design.design_id"],
            name=op.f("fk_design_deep_link_design_id_design"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registration.id"],
            name=op.f("fk_design_deep_link_registration_id_lti_registration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_deep_link")),
    )
    op.create_index(
        op.f("ix_design_deep_link_deployment_id"),
        "design_deep_link",
        ["deployment_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_design_deep_link_design_id"), "design_deep_link", ["design_id"], unique=False
    )
    op.create_index(
        op.f("ix_design_deep_link_registration_id"),
        "design_deep_link",
        ["registration_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_design_deep_link_registration_id"), table_name="design_deep_link")
    op.drop_index(op.f("ix_design_deep_link_design_id"), table_name="design_deep_link")
    op.drop_index(op.f("ix_design_deep_link_deployment_id"), table_name="design_deep_link")
    op.drop_table("design_deep_link")
    op.drop_index(op.f("ix_design_binding_registration_id"), table_name="design_binding")
    op.drop_index(op.f("ix_design_binding_design_id"), table_name="design_binding")
    op.drop_index(op.f("ix_design_binding_deployment_id"), table_name="design_binding")
    op.drop_table("design_binding")
    op.drop_index(op.f("ix_design_version_design_id"), table_name="design_version")
    op.drop_table("design_version")
    op.drop_table("design")
