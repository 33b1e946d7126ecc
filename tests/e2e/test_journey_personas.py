"""Every persona of the example course walked end to end over HTTP through the real server and
the demo platform (SQLite and PostgreSQL): launch, intake, diagnostic, checks, choice, a resume
in a new launch, and the final grade queued for the platform's gradebook.

The routes are the ones ``examples/intro-programming`` promises (see its README and
docs of the scenario): foundations for Ana, Dara and Eve, fast track for Ben, standard for Chen
and Femi; Dara gets two remedial rounds and support and is flagged "needs help"; Femi, back
eight days after the Loops check (a second server process whose clock runs eight days ahead),
is offered the review before the project.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import DemoPlatformClient, RunningServer, start_server
from tests.e2e.journey_walker import (
    JourneyWalker,
    Persona,
    current_activity,
    delivered_grade,
    example_design,
    queued_scores,
    snapshot_flags,
)
from tests.example_routes import FOUNDATIONS, STANDARD, TWO_REMEDIAL_ROUNDS_THEN_SUPPORT

EIGHT_DAYS = 8 * 24 * 3600


@pytest.fixture
def walker(running_server: RunningServer) -> Iterator[tuple[DemoPlatformClient, JourneyWalker]]:
    client = DemoPlatformClient(running_server)
    yield client, JourneyWalker(client, example_design())
    client.close()


def play(client: DemoPlatformClient, walker: JourneyWalker, persona: Persona) -> tuple[str, str]:
    """Launch, walk to the diagnostic's end, launch again (resume), walk to the end.

    Returns the final page's text and the activity the resumed launch showed."""
    page = client.launch_as(persona.key)
    page = walker.walk(persona, page, until="diagnostic")
    expected = current_activity(page)
    resumed = client.launch_as(persona.key)
    assert "you continue where you left off" in resumed.text
    assert current_activity(resumed) == expected, "a new launch continues where they were"
    final = walker.walk(persona, resumed)
    return final.text, expected or ""


def final_score(server: RunningServer, user_id: str) -> dict[str, object]:
    """The last score queued for the learner, once the demo platform's gradebook holds it."""
    scores = queued_scores(server.database_url, user_id)
    assert scores, "a score was queued for the gradebook"
    final = scores[-1]
    assert (final["activityProgress"], final["gradingProgress"]) == ("Completed", "FullyGraded")
    assert final["userId"] == user_id
    in_gradebook = delivered_grade(server.data_dir, server.database_url, user_id)
    assert in_gradebook["result_score"] == final["scoreGiven"]
    assert in_gradebook["grading_progress"] == "FullyGraded"
    return final


def test_ana_foundations_then_games_then_project(
    running_server: RunningServer, walker: tuple[DemoPlatformClient, JourneyWalker]
) -> None:
    client, journey = walker
    ana = Persona(
        "ana", "3", {"goal": "interest"}, {"diagnostic": [1], "project": [4]}, "elective-games"
    )
    text, _ = play(client, journey, ana)
    assert ana.met == [
        "welcome",
        "diagnostic",
        *FOUNDATIONS,
        "choose:elective-games",
        "elective-games",
        "project",
    ]
    assert "Your final grade: <strong>80%</strong>" in text
    # One grade, as a percentage (the page said "Your grade: 0.8." next to "80%").
    assert "Your grade:" not in text
    assert "foundations" in text
    progress_form = re.search(
        r'<form method="post" action="([^"]*/journey/progress)">'
        r'<input type="hidden" name="tool_session" value="([^"]+)">',
        text,
    )
    assert progress_form is not None  # a form: the session token is not put in a URL
    progress = client.request(
        "POST",
        html.unescape(progress_form.group(1)),
        data={"tool_session": html.unescape(progress_form.group(2))},
    )
    assert "You are on the foundations route because your prior programming experience" in (
        progress.text
    )
    assert final_score(running_server, "3")["scoreGiven"] == 80.0
    assert snapshot_flags(running_server.database_url, "3") == (False, "foundations")


def test_ben_fast_track_then_data_then_project(
    running_server: RunningServer, walker: tuple[DemoPlatformClient, JourneyWalker]
) -> None:
    client, journey = walker
    ben = Persona(
        "ben", "4", {"goal": "vocational"}, {"diagnostic": [6], "project": [5]}, "elective-data"
    )
    text, _ = play(client, journey, ben)
    assert ben.met == [
        "welcome",
        "diagnostic",
        "choose:elective-data",
        "elective-data",
        "project",
    ]
    assert "fast track" in text
    assert final_score(running_server, "4")["scoreGiven"] == 100.0


def test_chen_standard_route_in_portuguese_locale(
    running_server: RunningServer, walker: tuple[DemoPlatformClient, JourneyWalker]
) -> None:
    client, journey = walker
    chen = Persona(
        "chen", "5", {"goal": "academic"}, {"diagnostic": [4], "project": [4]}, "elective-web"
    )
    text, _ = play(client, journey, chen)
    assert chen.met == [
        "welcome",
        "diagnostic",
        *STANDARD,
        "choose:elective-web",
        "elective-web",
        "project",
    ]
    assert '<html lang="pt-BR">' in text  # the launch's locale pt_br
    assert final_score(running_server, "5")["scoreGiven"] == 80.0


def test_dara_remediation_twice_then_support_and_needs_help(
    running_server: RunningServer, walker: tuple[DemoPlatformClient, JourneyWalker]
) -> None:
    client, journey = walker
    dara = Persona(
        "dara",
        "6",
        {"goal": "academic"},
        {"diagnostic": [2], "loops-check": [1, 1, 1], "project": [3]},
        "elective-games",
    )
    text, _ = play(client, journey, dara)
    loops = dara.met[dara.met.index("loops-lesson") : dara.met.index("choose:elective-games")]
    assert loops == TWO_REMEDIAL_ROUNDS_THEN_SUPPORT
    assert snapshot_flags(running_server.database_url, "6") == (True, "foundations")
    assert final_score(running_server, "6")["scoreGiven"] == 60.0
    assert "Your final grade" in text


def test_eve_evidence_beats_declared_background(
    running_server: RunningServer, walker: tuple[DemoPlatformClient, JourneyWalker]
) -> None:
    client, journey = walker
    eve = Persona(
        "eve", "7", {"goal": "interest"}, {"diagnostic": [2], "project": [4]}, "elective-web"
    )
    play(client, journey, eve)
    assert eve.met[2:8] == FOUNDATIONS
    assert snapshot_flags(running_server.database_url, "7")[1] == "foundations"


def test_femi_back_eight_days_later_gets_the_review_before_the_project(
    running_server: RunningServer,
    walker: tuple[DemoPlatformClient, JourneyWalker],
) -> None:
    client, journey = walker
    femi = Persona(
        "femi", "8", {"goal": "vocational"}, {"diagnostic": [3], "project": [4]}, "elective-data"
    )
    page = client.launch_as("femi")
    journey.walk(femi, page, until="loops-check")
    assert femi.met == ["welcome", "diagnostic", *STANDARD]
    # Eight days later, on another device: the same tool behind the same address, whose clock
    # has moved on (a second server process on the same database).
    later = start_server(
        running_server.database_url,
        running_server.data_dir,
        base_url=running_server.base_url,
        extra_env={"ADAPTIVE_LTI_CLOCK_OFFSET_SECONDS": str(EIGHT_DAYS)},
        name="eight-days-later",
    )
    try:
        other_device = DemoPlatformClient(later)
        back = other_device.launch_as("femi")
        assert current_activity(back) == "loops-review"
        assert "a short review now helps you remember" in back.text
        rest = Persona("femi", "8", {}, {"project": [4]}, "elective-data")
        final = JourneyWalker(other_device, journey.design).walk(rest, back)
        other_device.close()
        # Delivered by the worker of the process whose clock queued it (eight days ahead).
        grade = final_score(running_server, "8")
    finally:
        later.stop()
    assert rest.met == ["loops-review", "choose:elective-data", "elective-data", "project"]
    assert "Your final grade" in final.text
    assert grade["scoreGiven"] == 80.0
