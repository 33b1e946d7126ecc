"""The tool's own AGS client against the demo platform's services, over real HTTP: the token
(client-credentials assertion, JSON sent as text/html), a score rescaled into the gradebook,
results read back, and a teacher's score refused, as Moodle does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import PlatformServiceError
from adaptive_lti.core.grading import ActivityProgress, GradingProgress, LineItemSpec, Score
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.db.tables import ServiceAccessToken
from adaptive_lti.demo.platform import AGS_SCOPES
from adaptive_lti.lti.ags import open_ags_client
from adaptive_lti.services.grades import queue_score
from tests.e2e.conftest import DemoPlatformClient, RunningServer

LINE_ITEM_PATH = "/demo-platform/services/2/lineitems/1/lineitem?type_id=1"


@pytest.fixture
def tool_sessions(running_server: RunningServer) -> Iterator[sessionmaker[Session]]:
    """The tool's database, as the tool's background workers use it."""
    engine = make_engine(running_server.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def demo_registration_id(server: RunningServer, sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        found = registrations_repo.find_registration(
            session, server.base_url + "/demo-platform", "adaptive-lti-demo-client"
        )
    assert found is not None
    return found.id


def score(user_id: str, given: float) -> dict[str, object]:
    return {
        "userId": user_id,
        "scoreGiven": given,
        "scoreMaximum": 10,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": datetime.now(UTC).isoformat(),
        "comment": "sent by the e2e test",
    }


def test_the_tool_posts_a_grade_that_lands_rescaled_in_the_gradebook(
    demo_client: DemoPlatformClient,
    running_server: RunningServer,
    tool_sessions: sessionmaker[Session],
) -> None:
    assert demo_client.launch_as("dara").status_code == 200
    registration_id = demo_registration_id(running_server, tool_sessions)
    lineitem = running_server.base_url + LINE_ITEM_PATH
    client = open_ags_client(tool_sessions)
    try:
        client.post_score(registration_id, lineitem, score("6", 7.5), AGS_SCOPES)
        results = client.read_results(registration_id, lineitem, AGS_SCOPES, user_id="6")
    finally:
        client.close()
    assert [(r.user_id, r.result_score, r.result_maximum) for r in results] == [("6", 75.0, 100.0)]
    gradebook = demo_client.request("GET", running_server.base_url + "/demo-platform/gradebook")
    assert gradebook.status_code == 200
    assert "Dara Doyle" in gradebook.text and "75" in gradebook.text


def test_a_teachers_score_is_refused_as_moodle_does(
    running_server: RunningServer, tool_sessions: sessionmaker[Session]
) -> None:
    registration_id = demo_registration_id(running_server, tool_sessions)
    client = open_ags_client(tool_sessions)
    try:
        with pytest.raises(PlatformServiceError):
            client.post_score(
                registration_id,
                running_server.base_url + LINE_ITEM_PATH,
                score("10", 9),
                AGS_SCOPES,
            )
    finally:
        client.close()


def _block_the_tool(server: RunningServer, blocked: bool) -> None:
    """Manage tools → HTTP security: Moodle's default cURL blocked hosts list (the tool's host)."""
    answer = httpx.post(
        server.url + "/demo-platform/admin/security",
        data={"curl_blocks_tool": "on"} if blocked else {},
        timeout=15,
    )
    assert answer.status_code == 303, answer.text


def _says_what_to_check(text: str) -> None:
    assert "<!DOCTYPE" not in text and "<html" not in text and "<p" not in text, text
    assert "fix_jwks_alg()" in text  # what Moodle's page said, as words
    assert "cURL blocked hosts list" in text and "cURL allowed ports list" in text
    assert "Site administration > General > Security > HTTP security" in text


def test_moodles_curl_block_is_named_not_shown_as_html(
    running_server: RunningServer, tool_sessions: sessionmaker[Session]
) -> None:
    """Issue 8: Moodle, unable to fetch the tool's keys (its default cURL blocks), answers the
    token request with an HTML error page (HTTP 404); the tool showed "HTTP 404: <!DOCTYPE
    html>..." in 'grades status' with no hint."""
    registration_id = demo_registration_id(running_server, tool_sessions)
    lineitem = running_server.base_url + LINE_ITEM_PATH
    _block_the_tool(running_server, True)
    try:
        # Moodle caches nothing the tool had: no access token either (an earlier test's).
        with transaction(tool_sessions) as session:
            session.execute(delete(ServiceAccessToken))
        client = open_ags_client(tool_sessions)
        try:
            with pytest.raises(PlatformServiceError) as refused:
                client.post_score(registration_id, lineitem, score("6", 5), AGS_SCOPES)
        finally:
            client.close()
        _says_what_to_check(str(refused.value))

        # The same through the outbox and 'grades status', as an administrator meets it.
        spec = LineItemSpec(
            label="Harness activity",
            score_maximum=10,
            granted_scopes=AGS_SCOPES,
            lineitem_url=lineitem,
        )
        with transaction(tool_sessions) as session:
            queue_score(
                session,
                registration_id=registration_id,
                line_item=spec,
                now=datetime.now(UTC),
                score=Score(
                    user_id="6",
                    activity_progress=ActivityProgress.completed,
                    grading_progress=GradingProgress.fully_graded,
                    timestamp=datetime.now(UTC),
                    score_given=4,
                    score_maximum=10,
                ),
                dedupe_key="curl-block-test",
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTIVE_LTI_")}
        env.update(
            {
                "ADAPTIVE_LTI_DATABASE_URL": running_server.database_url,
                "ADAPTIVE_LTI_ENVIRONMENT": "test",
            }
        )
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline:
            # This run or the server's own worker tries it; either records the same words.
            subprocess.run(
                [sys.executable, "-m", "adaptive_lti.cli", "grades", "deliver", "--once"],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            done = subprocess.run(
                [sys.executable, "-m", "adaptive_lti.cli", "grades", "status", "--user", "6"],
                env=env,
                capture_output=True,
                timeout=60,
                check=True,
            )
            status = done.stdout.decode()
            if "cURL" in status or "HTTP 404" in status:
                break
            time.sleep(0.5)
        _says_what_to_check(status)
    finally:
        _block_the_tool(running_server, False)
