"""The tool's generated session secret (one row), for a tool started without
ADAPTIVE_LTI_SECRET_KEY: every process on the database signs and checks with the same one.

Revision ID: 0007_tool_secret
Revises: 0006_audit
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_tool_secret"
down_revision: str | None = "0006_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_tool_secret",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_tool_secret")),
    )


def downgrade() -> None:
    op.drop_table("lti_tool_secret")
