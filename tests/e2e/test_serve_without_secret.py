"""'adaptive-lti serve' with no ADAPTIVE_LTI_SECRET_KEY, for real (subprocesses on SQLite and
PostgreSQL): a tool session signed with a guessable constant is refused, and two servers on one
database use the one secret the first of them made."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import text

from adaptive_lti.db.session import make_engine

START_TIMEOUT_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(database_url: str, workdir: Path, name: str) -> Iterator[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADAPTIVE_LTI_")}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env.update(
        {
            "ADAPTIVE_LTI_DATABASE_URL": database_url,
            "ADAPTIVE_LTI_BASE_URL": url,
            "ADAPTIVE_LTI_LOG_LEVEL": "WARNING",
            "ADAPTIVE_LTI_GRADE_DELIVERY_WORKER": "false",
        }
    )
    log_path = workdir / f"{name}.log"
    command = [sys.executable, "-m", "adaptive_lti.cli", "serve", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited:\n{log_path.read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def instructor_token(secret: str) -> str:
    """A tool session for an instructor, signed as the tool signs with ``secret``."""
    now = datetime.now(UTC)
    claims = {
        "iss": "adaptive-lti",
        "aud": "adaptive-lti/tool-session",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "lid": 1,
        "reg": 1,
        "dep": 1,
        "ctx": 1,
        "rl": 1,
        "usr": 1,
        "sub": "4",
        "roles": ["Instructor"],
        "ins": True,
    }
    key = hmac.new(secret.encode(), b"adaptive-lti tool session v1", hashlib.sha256).digest()
    return jwt.encode(claims, key, algorithm="HS256")


def test_serve_without_a_secret_refuses_constants_and_shares_its_own(
    new_database_url: Callable[[str], str], backend: str, tmp_path: Path
) -> None:
    database_url = new_database_url(backend)
    with (
        serve(database_url, tmp_path, "first") as first,
        serve(database_url, tmp_path, "second") as second,
    ):
        for server in (first, second):
            for constant in ("change-me", "", "secret"):
                response = httpx.get(
                    server + "/lti/session",
                    headers={
                        "X-Tool-Session": instructor_token(constant),
                        "Accept": "application/json",
                    },
                )
                assert response.status_code == 403, (server, constant, response.text)
        engine = make_engine(database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(text("select secret from lti_tool_secret")).all()
        finally:
            engine.dispose()
        assert len(rows) == 1 and len(rows[0].secret) >= 48
        # Both servers accept what either signs: they share the generated secret.
        token = instructor_token(rows[0].secret)
        for server in (first, second):
            response = httpx.get(server + "/lti/session", headers={"X-Tool-Session": token})
            assert response.status_code == 200, response.text
            assert response.json()["is_instructor"] is True


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADAPTIVE_LTI_SECRET_KEY", raising=False)
