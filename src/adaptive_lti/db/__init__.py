"""Persistence: SQLAlchemy tables, the engine/session factory, and repositories (rows <-> core values).

Lives here: the table definitions (schema changes go through ``migrations/`` only), the engine and
session factory (one transaction per request; the SQLite write gate), running the migrations, and
one repository module per area, the only code that turns rows into core values and back. Every
repository read of tenant data takes the tenant and builds its statement from it.
May import: ``adaptive_lti.core`` (and SQLAlchemy, Alembic). Repositories flush, never commit.
"""
