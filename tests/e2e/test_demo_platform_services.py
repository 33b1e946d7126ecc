"""The tool's own AGS client against the demo platform's services, over real HTTP: the token
(client-credentials assertion, JSON sent as text/html), a score rescaled into the gradebook,
results read back, and a teacher's score refused, as Moodle does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import PlatformServiceError
from adaptive_lti.db import lti_repo
from adaptive_lti.db.session import make_engine, make_session_factory, transaction
from adaptive_lti.lti.ags import open_ags_client
from adaptive_lti.lti.platform_demo import AGS_SCOPES
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
        found = lti_repo.find_registration(
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
