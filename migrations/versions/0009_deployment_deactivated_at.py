"""Deployments remember when an administrator deactivated them, so a refused launch can tell a
deactivated deployment from one recorded by a launch and never activated.

Revision ID: 0009_deployment_deactivated_at
Revises: 0008_refusals
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_deployment_deactivated_at"
down_revision: str | None = "0008_refusals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lti_deployment") as table:
        table.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: it would copy and drop lti_deployment, and the drop cascades to every
        # row that references a deployment (contexts, launches, learners' enrolments and events).
        # SQLite drops a plain column in place since 3.35.
        op.execute("ALTER TABLE lti_deployment DROP COLUMN deactivated_at")
        return
    op.drop_column("lti_deployment", "deactivated_at")
