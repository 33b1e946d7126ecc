"""Fixtures of the command-line tests."""

from __future__ import annotations

from typing import Any

import pytest

from adaptive_lti.db import migrate


@pytest.fixture
def database(new_database_url: Any, backend: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, upgraded database (SQLite and PostgreSQL) the commands read from the environment;
    no key directory from the developer's environment."""
    url: str = new_database_url(backend)
    migrate.upgrade(url)
    monkeypatch.setenv("ADAPTIVE_LTI_DATABASE_URL", url)
    monkeypatch.delenv("ADAPTIVE_LTI_KEY_DIR", raising=False)
    return url
