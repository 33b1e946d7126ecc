"""Security headers on every response (CSP with frame-ancestors from the registered platforms,
nosniff, Referrer-Policy, HSTS in production), the session cookie's flags, and templates CSP
can run (no inline script, handler or style). Through the app on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.db import migrate
from adaptive_lti.lti import session as tool_session
from adaptive_lti.settings import Settings
from adaptive_lti.web import content
from adaptive_lti.web.app import create_app
from tests.lti.harness import LtiHarness, harness, token_of
from tests.lti.scripted_platform import INSTRUCTOR, ISSUER, ScriptedPlatform

TEMPLATES = Path(content.__file__).resolve().parent / "templates"


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


def policy_of(response: object) -> dict[str, str]:
    header = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    directives = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in directives}


def assert_secure_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    policy = policy_of(response)
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert "unsafe-inline" not in headers["content-security-policy"]
    ancestors = policy["frame-ancestors"].split()
    assert ancestors[0] == "'self'" and ISSUER in ancestors
    assert headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in headers  # not in production


def test_pages_that_carry_the_token_in_their_url_send_no_referrer(h: LtiHarness) -> None:
    token = token_of(h.full_launch(role=INSTRUCTOR, subject="4").text)
    for path in ("/lti/designs", "/lti/me", "/lti/course", "/lti/session"):
        response = h.client.get(path, params={tool_session.FIELD: token})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert_secure_headers(response)


def test_every_kind_of_response_has_the_headers(h: LtiHarness) -> None:
    for path in ("/healthz", "/static/app.css", "/nowhere", "/.well-known/jwks.json"):
        response = h.client.get(path)
        assert_secure_headers(response)
        assert response.headers["referrer-policy"] == "no-referrer"
    refused = h.client.post("/lti/designs/bind", data={"design": "x"})
    assert refused.status_code == 403
    assert_secure_headers(refused)


def test_frame_ancestors_follow_the_registered_platforms(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    other = ScriptedPlatform(issuer="https://vle.other-school.example:8443")
    with harness(session_factory, db_url, platform=other) as lti:
        ancestors = policy_of(lti.client.get("/healthz"))["frame-ancestors"].split()
        assert ancestors[0] == "'self'"
        assert "https://vle.other-school.example:8443" in ancestors


def test_configured_frame_ancestors_are_added_to_the_registered_platforms(
    session_factory: sessionmaker[Session], db_url: str
) -> None:
    """Canvas serves course pages from the institution's host, not its issuer's: an
    administrator names such hosts in ADAPTIVE_LTI_FRAME_ANCESTORS."""
    with harness(
        session_factory, db_url, frame_ancestors=("https://school.instructure.com",)
    ) as lti:
        ancestors = policy_of(lti.client.get("/healthz"))["frame-ancestors"].split()
        assert ancestors[0] == "'self'"
        assert "https://school.instructure.com" in ancestors
        assert len(ancestors) > 2  # the registered platform's origin is still there


@pytest.mark.parametrize(
    "value",
    ["https://school.example/path", "school.example", "*", "https://a.example 'unsafe-inline'"],
)
def test_a_frame_ancestor_must_be_an_origin(value: str) -> None:
    with pytest.raises(ValidationError, match="ADAPTIVE_LTI_FRAME_ANCESTORS"):
        Settings(frame_ancestors=(value,))


def test_hsts_in_production_only(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'tool.db'}"
    migrate.upgrade(database_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        database_url=database_url,
        base_url="https://tool.example.edu",
        secret_key="p" * 48,
        key_dir=tmp_path / "keys",
    )
    client = TestClient(create_app(settings), base_url="https://tool.example.edu")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")
    client.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_session_cookie_flags(
    session_factory: sessionmaker[Session], db_url: str, scheme: str
) -> None:
    base = f"{scheme}://testserver"
    with harness(session_factory, db_url, base_url=base) as lti:
        lti.client.base_url = base  # type: ignore[assignment]
        launch_url = f"{base}/lti/launch"
        state, nonce = lti.start(target_link_uri=launch_url)
        claims = lti.platform.claims(
            nonce=nonce, now=lti.clock.now, role=INSTRUCTOR, subject="4", target_link_uri=launch_url
        )
        response = lti.launch(lti.platform.sign(claims), state)
        assert response.status_code == 200, response.text
        (cookie,) = [
            value
            for value in response.headers.get_list("set-cookie")
            if value.startswith(tool_session.COOKIE + "=")
        ]
        flags = {part.strip() for part in cookie.split(";")[1:]}
        assert "HttpOnly" in flags and "Path=/" in flags
        if scheme == "https":
            # The tool runs in the platform's iframe: a third-party context needs None+Secure.
            assert {"Secure", "SameSite=None", "Partitioned"} <= flags
        else:
            assert "SameSite=Lax" in flags and "Secure" not in flags


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE), "inline <script>"),
    (re.compile(r"<style\b", re.IGNORECASE), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "on* event handler"),
    (re.compile(r"javascript:", re.IGNORECASE), "javascript: URL"),
]


def test_no_template_needs_unsafe_inline() -> None:
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for pattern, what in INLINE:
            found += [f"{template.relative_to(TEMPLATES)}: {what}" for _ in pattern.finditer(text)]
    assert found == []


def test_learner_content_links_send_no_referrer_and_no_opener() -> None:
    html = content.render_markdown("See [the notes](https://example.org/notes) and *more*.")
    assert 'rel="noreferrer noopener"' in html
    assert 'href="https://example.org/notes"' in html
    inline = content.render_inline("[a link](https://example.org/a)")
    assert 'rel="noreferrer noopener"' in inline


def test_the_registration_page_may_be_framed_by_the_platform_registering(h: LtiHarness) -> None:
    registered = policy_of(h.client.get("/healthz"))["frame-ancestors"]
    url = "https://new-vle.example.org/mod/lti/openid-configuration.php"
    response = h.client.get("/lti/register", params={"openid_configuration": url})
    ancestors = policy_of(response)["frame-ancestors"].split()
    assert "https://new-vle.example.org" in ancestors and ISSUER in ancestors
    elsewhere = h.client.get("/lti/me", params={"openid_configuration": url})
    assert policy_of(elsewhere)["frame-ancestors"] == registered
    for hostile in ("https://a;b.example/x", "https://evil.example'; script-src *", "javascript:x"):
        sent = h.client.get("/lti/register", params={"openid_configuration": hostile})
        assert policy_of(sent)["frame-ancestors"] == registered, hostile
