"""Cross-site request forgery: every unsafe request must prove it came from the tool's own page
(the tool-session token in the form or the X-Tool-Session header; the cookie alone never does),
and Origin/Referer must be the tool's own where browsers send them. Through the app with real
launches, on SQLite and PostgreSQL, with the demo platform mounted so its routes are enumerated
too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Mount

from adaptive_lti.db.tables import DesignBinding, DesignVersion, LearnerEvent
from adaptive_lti.demo import routes as demo_platform
from adaptive_lti.lti import session as tool_session
from adaptive_lti.web import security
from tests.design_samples import INTRO_V1
from tests.lti.harness import LtiHarness, harness, token_of
from tests.lti.scripted_platform import INSTRUCTOR, LTI

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
REFUSAL_HINT = "Reopen the activity from your course"


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str, tmp_path: Path) -> Iterator[LtiHarness]:
    with harness(
        session_factory,
        db_url,
        demo_platform=True,
        demo_platform_key_file=tmp_path / "keys" / "demo-platform.pem",
    ) as lti:
        yield lti


def instructor_launch(h: LtiHarness) -> str:
    def mutate(claims: dict[str, Any]) -> None:
        claims[LTI + "custom"] = {}

    response = h.full_launch(role=INSTRUCTOR, subject="4", mutate=mutate)
    assert response.status_code == 200, response.text
    assert h.client.cookies.get(tool_session.COOKIE)  # the browser kept the session cookie
    return token_of(response.text)


def count(h: LtiHarness, table: type[Any]) -> int:
    with h.session_factory() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def unsafe_routes(h: LtiHarness) -> list[tuple[str, str, Any]]:
    """(method, path, route) of every unsafe route, included routers flattened (FastAPI's own
    walk of ``app.routes``)."""
    found = []
    for route in iter_route_contexts(h.app.routes):
        if isinstance(route.original_route, Mount):
            # Static files only (GET): the tool's, and the demo platform's own since it is a
            # package apart.
            assert route.path in {"/static", "/demo-platform/static"}, (
                f"unexpected mount {route.path}"
            )
            continue
        unsafe = sorted((route.methods or set()) & UNSAFE)
        if not unsafe:
            continue
        # Only FastAPI routes get the app's dependency: any other unsafe route would escape it.
        assert isinstance(route.original_route, APIRoute), f"{route.path} is not an APIRoute"
        found += [(method, route.path, route) for method in unsafe]
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def assert_refused(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert REFUSAL_HINT in response.text


def test_every_unsafe_route_refuses_a_request_with_only_the_cookie(h: LtiHarness) -> None:
    instructor_launch(h)
    routes = unsafe_routes(h)
    checked = [(m, p) for m, p, _ in routes if security.exemption_for(p) is None]
    assert ("POST", "/lti/designs/publish") in checked and ("POST", "/journey/answer") in checked
    assert len(checked) >= 15
    for method, path in checked:
        # The cookie jar holds the instructor's session cookie; the form carries no token.
        response = h.client.request(method, concrete(path), data={"design": "x", "text": "y"})
        assert_refused(response)
        assert "carries no tool session token" in response.text, (method, path)
        as_json = h.client.request(
            method, concrete(path), json={}, headers={"Accept": "application/json"}
        )
        assert as_json.status_code == 403, (method, path)
        assert REFUSAL_HINT in as_json.json()["hint"]


def test_the_exempt_routes_are_exactly_the_platform_initiated_ones(h: LtiHarness) -> None:
    exempt = {(m, p) for m, p, _ in unsafe_routes(h) if security.exemption_for(p) is not None}
    tool_exempt = {(m, p) for m, p in exempt if not p.startswith("/demo-platform/")}
    assert tool_exempt == {("POST", "/lti/login"), ("POST", "/lti/launch")}
    demo_routes = {
        (m, p)
        for m, p, route in unsafe_routes(h)
        if route.endpoint.__module__.startswith(demo_platform.__name__ + ".")
    }
    assert exempt - tool_exempt == demo_routes
    assert demo_routes  # the demo platform was mounted, and its posts were enumerated
    assert all(exemption.reason for exemption in security.EXEMPT_ROUTES)


def test_a_cross_site_publish_or_bind_with_the_cookie_changes_nothing(h: LtiHarness) -> None:
    token = instructor_launch(h)
    evil = {"Origin": "https://evil.example", "Referer": "https://evil.example/page"}
    published = h.client.post(
        "/lti/designs/publish",
        data={"filename": "intro.yaml", "source_text": INTRO_V1, "use_here": "yes"},
        headers=evil,
    )
    assert_refused(published)
    bound = h.client.post("/lti/designs/bind", data={"design": "sample-programming"})
    assert_refused(bound)
    assert count(h, DesignVersion) == 0 and count(h, DesignBinding) == 0
    # Even with the token, a post from another site's page is refused by its Origin.
    stolen = h.client.post(
        "/lti/designs/publish",
        data={"tool_session": token, "filename": "intro.yaml", "source_text": INTRO_V1},
        headers={"Origin": "https://evil.example"},
    )
    assert_refused(stolen)
    assert "https://evil.example" in stolen.text
    referred = h.client.post(
        "/lti/designs/bind",
        data={"tool_session": token, "design": "x"},
        headers={"Referer": "https://evil.example/page"},
    )
    assert_refused(referred)
    assert count(h, DesignVersion) == 0
    # The tool's own page: the token in the form, Origin the tool's (or null, as browsers send
    # under Referrer-Policy: no-referrer), or no Origin at all.
    for headers in ({"Origin": "http://testserver"}, {"Origin": "null"}, {}):
        ok = h.client.post(
            "/lti/designs/publish",
            data={"tool_session": token, "filename": "intro.yaml", "source_text": INTRO_V1},
            headers=headers,
        )
        assert ok.status_code == 200, ok.text
    assert count(h, DesignVersion) == 1
    by_header = h.client.post(
        "/lti/designs/bind",
        data={"design": "sample-programming"},
        headers={tool_session.HEADER: token, "Origin": "http://testserver"},
    )
    assert by_header.status_code == 200, by_header.text
    assert count(h, DesignBinding) == 1


def test_learner_posts_with_only_the_cookie_are_refused(h: LtiHarness) -> None:
    response = h.full_launch(subject="3")
    assert response.status_code == 200
    assert h.client.cookies.get(tool_session.COOKIE)
    events = count(h, LearnerEvent)
    for path in ("/journey/intake", "/journey/answer", "/journey/complete", "/journey/choose"):
        refused = h.client.post(path, data={"enrolment": "1", "activity": "a", "seq": "1"})
        assert_refused(refused)
    assert count(h, LearnerEvent) == events


def test_an_expired_or_altered_token_is_refused_as_such(h: LtiHarness) -> None:
    token = instructor_launch(h)
    altered = h.client.post("/lti/designs/bind", data={"tool_session": token[:-4] + "AAAA"})
    assert altered.status_code == 403
    assert "not valid" in altered.text
    h.clock.advance(h.app.state.settings.session_ttl_seconds + 1)
    expired = h.client.post("/lti/designs/bind", data={"tool_session": token, "design": "x"})
    assert expired.status_code == 403
    assert "expired" in expired.text
