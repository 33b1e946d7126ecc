"""Refused logins and launches counted per hour, step and check (for 'adaptive-lti status').

Revision ID: 0008_refusals
Revises: 0007_tool_secret
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_refusals"
down_revision: str | None = "0007_tool_secret"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_refusal_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_message", sa.Text(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_refusal_count")),
        sa.UniqueConstraint(
            "hour", "step", "check", name=op.f("uq_lti_refusal_count_hour_step_check")
        ),
    )


def downgrade() -> None:
    op.drop_table("lti_refusal_count")
