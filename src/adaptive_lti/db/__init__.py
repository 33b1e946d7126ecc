"""Persistence: SQLAlchemy tables, the engine/session factory, and repositories (rows <-> core values)."""
