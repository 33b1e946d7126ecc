"""Forged requests against the real server over HTTP (``adaptive-lti demo``, SQLite and
PostgreSQL): the instructor's browser holds the tool's session cookie, and a post that carries
only the cookie (from another site's page) changes nothing; the same post from the tool's page
(with the token) reaches the handler. The security headers come with real responses."""

from __future__ import annotations

import re

from adaptive_lti.lti import session as tool_session
from tests.e2e.conftest import DemoPlatformClient


def test_a_forged_post_with_the_instructors_cookie_is_refused(
    demo_client: DemoPlatformClient,
) -> None:
    page = demo_client.launch_as("irene")
    assert page.status_code == 200
    assert demo_client.http.cookies.get(tool_session.COOKIE)  # the browser kept the cookie
    found = re.search(r'name="tool_session" value="([^"]+)"', page.text)
    assert found
    bind = demo_client.server.base_url + "/lti/designs/bind"
    for headers in ({}, {"Origin": "https://evil.example"}):
        forged = demo_client.http.post(bind, data={"design": "no-such-design"}, headers=headers)
        assert forged.status_code == 403, forged.text
        assert "Reopen the activity from your course" in forged.text
    stolen = demo_client.http.post(
        bind,
        data={"design": "no-such-design", "tool_session": found.group(1)},
        headers={"Origin": "https://evil.example"},
    )
    assert stolen.status_code == 403 and "https://evil.example" in stolen.text
    # From the tool's own page the same post reaches the handler (which finds no such design).
    genuine = demo_client.http.post(
        bind,
        data={"design": "no-such-design", "tool_session": found.group(1)},
        headers={"Origin": demo_client.server.base_url},
    )
    assert genuine.status_code == 404, genuine.text
    assert page.headers["referrer-policy"] == "no-referrer"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
