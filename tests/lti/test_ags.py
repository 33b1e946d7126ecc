"""The AGS client against a Moodle-shaped platform: line items, scores, results."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import (
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    ActivityProgress,
    GradingProgress,
    LineItemSpec,
    Score,
    ServiceCallRefused,
)
from adaptive_lti.lti.ags import AgsClient, service_url
from adaptive_lti.lti.service_http import next_page_url
from tests.lti.fake_platform import (
    AGS_SCOPES,
    LINEITEM_URL,
    LINEITEMS_URL,
    FakePlatform,
    service_clients,
)
from tests.lti.fake_platform_fixtures import clock, platform, registration_id

# Fixtures, shared with the other fake-platform tests.
__all__ = ["clock", "platform", "registration_id"]

# The score Moodle 4.5 accepted (moodle-payloads: "score_post").
MOODLE_SCORE = {
    "activityProgress": "Completed",
    "comment": "posted by stand-in tool",
    "gradingProgress": "FullyGraded",
    "scoreGiven": 7.5,
    "scoreMaximum": 10,
    "timestamp": "2026-11-22T11:16:03+00:00",
    "userId": "3",
}


@pytest.fixture
def ags(session_factory: sessionmaker[Session], platform: FakePlatform) -> AgsClient:
    return service_clients(session_factory, platform)[0]


def test_service_urls_add_to_the_path_and_keep_the_query() -> None:
    assert service_url(LINEITEM_URL, "scores") == (
        "https://moodle.example.edu/mod/lti/services.php/2/lineitems/2/lineitem/scores?type_id=1"
    )
    assert service_url(LINEITEM_URL, "results").endswith("/lineitem/results?type_id=1")
    assert service_url("https://p.example/li/7/", "scores") == "https://p.example/li/7/scores"


def test_a_score_goes_to_the_scores_url_with_the_query_kept(
    ags: AgsClient, platform: FakePlatform, registration_id: int
) -> None:
    ags.post_score(registration_id, LINEITEM_URL, MOODLE_SCORE, AGS_SCOPES)
    [received] = platform.received_scores
    assert received.payload == MOODLE_SCORE
    assert received.lineitem_url == LINEITEM_URL
    [post] = [r for r in platform.requests if r.url.path.endswith("/scores")]
    assert str(post.url) == service_url(LINEITEM_URL, "scores")
    assert post.headers["content-type"] == "application/vnd.ims.lis.v1.score+json"
    # The token asked for the AGS scopes the launch granted, and no others.
    assert platform.token_requests[0]["scope"] == " ".join(sorted(AGS_SCOPES))


def test_results_come_back_rescaled_to_the_line_item(
    ags: AgsClient, platform: FakePlatform, registration_id: int
) -> None:
    ags.post_score(registration_id, LINEITEM_URL, MOODLE_SCORE, AGS_SCOPES)
    [result] = ags.read_results(registration_id, LINEITEM_URL, AGS_SCOPES, user_id="3")
    assert (result.user_id, result.result_score, result.result_maximum) == ("3", 75, 100)
    assert result.comment == "posted by stand-in tool"
    [get] = [r for r in platform.requests if r.url.path.endswith("/results")]
    assert get.url.params["type_id"] == "1"
    assert get.url.params["user_id"] == "3"
    assert get.headers["accept"] == "application/vnd.ims.lis.v2.resultcontainer+json"


def test_moodle_refusing_a_teachers_score_is_a_clear_permanent_refusal(
    ags: AgsClient, registration_id: int
) -> None:
    with pytest.raises(ServiceCallRefused) as caught:
        ags.post_score(registration_id, LINEITEM_URL, {**MOODLE_SCORE, "userId": "4"}, AGS_SCOPES)
    assert str(caught.value).startswith(
        "Moodle refused the score for user 4: they are not a gradable student in this course"
    )


def test_a_score_without_the_granted_score_scope_is_refused_before_any_call(
    ags: AgsClient, platform: FakePlatform, registration_id: int
) -> None:
    with pytest.raises(ServiceCallRefused) as caught:
        ags.post_score(registration_id, LINEITEM_URL, MOODLE_SCORE, [SCOPE_LINEITEM_READONLY])
    assert SCOPE_SCORE in str(caught.value)
    assert "grade sync and column management" in caught.value.hint
    assert platform.requests == []


def test_an_existing_line_item_is_found_by_resource_id(
    ags: AgsClient, platform: FakePlatform, registration_id: int
) -> None:
    spec = LineItemSpec(
        label="Extra",
        score_maximum=5,
        granted_scopes=tuple(AGS_SCOPES),
        lineitems_url=LINEITEMS_URL,
        resource_id="extra-1",
        tag="extra",
    )
    item = ags.find_or_create_line_item(registration_id, spec)
    assert item.url.endswith("/lineitems/3/lineitem?type_id=1")
    assert platform.created_line_items == []
    [listing] = [r for r in platform.requests if r.url.path.endswith("/lineitems")]
    assert listing.url.params["type_id"] == "1"
    assert listing.url.params["resource_id"] == "extra-1"
    assert listing.headers["accept"] == "application/vnd.ims.lis.v2.lineitemcontainer+json"


def test_a_missing_line_item_is_created_once(
    ags: AgsClient, platform: FakePlatform, registration_id: int
) -> None:
    spec = LineItemSpec(
        label="Adaptive route: statistics",
        score_maximum=100,
        granted_scopes=tuple(AGS_SCOPES),
        lineitems_url=LINEITEMS_URL,
        resource_id="design:stats-101",
        tag="adaptive-lti",
        platform_resource_link_id="99",  # an activity without a column on the platform
    )
    created = ags.find_or_create_line_item(registration_id, spec)
    again = ags.find_or_create_line_item(registration_id, spec)
    assert created.url == again.url
    [body] = platform.created_line_items
    assert body["label"] == "Adaptive route: statistics"
    assert body["resourceId"] == "design:stats-101"
    assert body["resourceLinkId"] == "99"
    [post] = [
        r for r in platform.requests if r.method == "POST" and r.url.path.endswith("/lineitems")
    ]
    assert post.headers["content-type"] == "application/vnd.ims.lis.v2.lineitem+json"
    assert str(post.url) == LINEITEMS_URL


def test_an_activity_that_has_a_column_gets_no_second_one(
    ags: AgsClient, platform: FakePlatform, registration_id: int
) -> None:
    """Moodle's activity column (resourceLinkId "1") is the activity's: the tool's own
    resourceId does not make it create another."""
    spec = LineItemSpec(
        label="Introduction to Programming",
        score_maximum=100,
        granted_scopes=tuple(AGS_SCOPES),
        lineitems_url=LINEITEMS_URL,
        resource_id="design:intro-programming",
        tag="adaptive-lti",
        platform_resource_link_id="1",
    )
    found = ags.find_or_create_line_item(registration_id, spec)
    assert found.url == LINEITEM_URL and found.label == "Harness activity"
    assert platform.created_line_items == []


def test_creating_a_line_item_needs_the_lineitem_scope(
    ags: AgsClient, registration_id: int
) -> None:
    spec = LineItemSpec(
        label="x",
        score_maximum=1,
        lineitems_url=LINEITEMS_URL,
        resource_id="new",
        granted_scopes=(SCOPE_LINEITEM_READONLY, SCOPE_SCORE, SCOPE_RESULT_READONLY),
    )
    with pytest.raises(ServiceCallRefused, match=r"AGS scope \S+/scope/lineitem\. "):
        ags.find_or_create_line_item(registration_id, spec)


def test_the_score_payload_is_what_ags_3_4_asks_for() -> None:
    from datetime import UTC, datetime

    score = Score(
        user_id="3",
        activity_progress=ActivityProgress.completed,
        grading_progress=GradingProgress.fully_graded,
        timestamp=datetime(2026, 11, 22, 11, 16, 3, tzinfo=UTC),
        score_given=7.5,
        score_maximum=10,
        comment="posted by stand-in tool",
    )
    assert score.payload() == {**MOODLE_SCORE, "timestamp": "2026-11-22T11:16:03.000+00:00"}
    json.dumps(score.payload())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            '<https://P.example/Members?Page=2&Limit=Mixed>; rel="next"',
            "https://P.example/Members?Page=2&Limit=Mixed",
        ),
        (
            '<https://p.example/m?p=1>; rel="prev", <https://p.example/m?p=3>; rel="next"',
            "https://p.example/m?p=3",
        ),
        ("<https://p.example/m?p=3>; rel=next", "https://p.example/m?p=3"),
        ('<https://p.example/m?p=3>; rel="differences"', None),
        ('</mod/lti/Page2>; rel="next"', "https://moodle.example.edu/mod/lti/Page2"),
    ],
)
def test_the_next_link_is_followed_exactly_as_given(header: str, expected: str | None) -> None:
    request = httpx.Request("GET", "https://moodle.example.edu/mod/lti/services.php/x")
    response = httpx.Response(200, headers={"Link": header}, request=request)
    assert next_page_url(response) == expected
