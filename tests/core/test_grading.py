"""Grade values: score validation and payload, line items from the AGS claim, back-off, keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.grading import (
    SCOPE_LINEITEM,
    SCOPE_SCORE,
    ActivityProgress,
    GradingProgress,
    LineItemSpec,
    RetryPolicy,
    Score,
    line_item_spec_from_claim,
    score_dedupe_key,
)
from adaptive_lti.core.roster import MemberStatus

NOW = datetime(2026, 11, 22, 11, 16, 3, tzinfo=UTC)
# The AGS claim of Moodle 4.5's student launch (moodle-payloads).
MOODLE_AGS_CLAIM = {
    "lineitem": "https://moodle.example.edu/mod/lti/services.php/2/lineitems/2/lineitem?type_id=1",
    "lineitems": "https://moodle.example.edu/mod/lti/services.php/2/lineitems?type_id=1",
    "scope": [
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    ],
}


def score(**changes: object) -> Score:
    values: dict[str, object] = {
        "user_id": "3",
        "activity_progress": ActivityProgress.in_progress,
        "grading_progress": GradingProgress.pending,
        "timestamp": NOW,
    }
    values.update(changes)
    return Score(**values)  # type: ignore[arg-type]


def test_a_progress_only_score_has_no_score_fields() -> None:
    assert score().payload() == {
        "userId": "3",
        "activityProgress": "InProgress",
        "gradingProgress": "Pending",
        "timestamp": "2026-11-22T11:16:03.000+00:00",
    }


def test_timestamps_are_sent_in_utc_with_milliseconds() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    assert score(timestamp=local).payload()["timestamp"] == "2026-11-22T11:16:03.000+00:00"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"score_given": 5.0}, "needs scoreMaximum"),
        ({"score_given": -1.0, "score_maximum": 10.0}, "at least 0"),
        ({"score_given": float("nan"), "score_maximum": 10.0}, "at least 0"),
        ({"score_given": 1.0, "score_maximum": 0.0}, "greater than 0"),
        ({"user_id": ""}, "user id"),
        ({"timestamp": datetime(2026, 11, 22)}, "time zone"),
    ],
)
def test_impossible_scores_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        score(**changes)


def test_the_moodle_claim_gives_the_activitys_own_column() -> None:
    spec = line_item_spec_from_claim(MOODLE_AGS_CLAIM, label="Route", score_maximum=100)
    assert spec is not None
    assert spec.lineitem_url == MOODLE_AGS_CLAIM["lineitem"]
    assert spec.lineitems_url == MOODLE_AGS_CLAIM["lineitems"]
    assert set(spec.granted_scopes) == set(MOODLE_AGS_CLAIM["scope"])


def test_a_deep_linking_claim_without_lineitem_finds_or_creates_a_column() -> None:
    claim = {k: v for k, v in MOODLE_AGS_CLAIM.items() if k != "lineitem"}
    spec = line_item_spec_from_claim(
        claim, label="Route", score_maximum=100, resource_id="design:intro"
    )
    assert spec is not None
    assert spec.lineitem_url is None
    assert spec.resource_id == "design:intro"


@pytest.mark.parametrize(
    "claim",
    [
        None,
        {},
        {**MOODLE_AGS_CLAIM, "scope": [SCOPE_LINEITEM]},  # no score scope
        {"scope": [SCOPE_SCORE], "lineitems": MOODLE_AGS_CLAIM["lineitems"]},  # cannot find
        {"scope": "not a list", "lineitem": "x"},
    ],
)
def test_no_usable_claim_means_no_grades(claim: dict[str, object] | None) -> None:
    assert line_item_spec_from_claim(claim, label="x", score_maximum=1) is None


def test_a_line_item_needs_a_url_and_a_positive_maximum() -> None:
    with pytest.raises(InvalidInputError, match="AGS claim"):
        LineItemSpec(label="x", score_maximum=1, granted_scopes=())
    with pytest.raises(InvalidInputError, match="greater than 0"):
        LineItemSpec(label="x", score_maximum=0, granted_scopes=(), lineitem_url="u")


def test_keys_identify_the_column_and_the_score() -> None:
    by_url = LineItemSpec(label="a", score_maximum=1, granted_scopes=(), lineitem_url="u")
    relabelled = LineItemSpec(label="b", score_maximum=5, granted_scopes=(), lineitem_url="u")
    assert by_url.binding_key() == relabelled.binding_key()
    other = LineItemSpec(label="a", score_maximum=1, granted_scopes=(), lineitems_url="u")
    assert other.binding_key() != by_url.binding_key()
    key = score_dedupe_key(1, by_url.binding_key(), score())
    assert key == score_dedupe_key(1, by_url.binding_key(), score())
    assert key != score_dedupe_key(2, by_url.binding_key(), score())
    assert key != score_dedupe_key(1, by_url.binding_key(), score(timestamp=NOW + timedelta(1)))


def test_back_off_doubles_with_full_jitter_between_floor_and_cap() -> None:
    policy = RetryPolicy(base_seconds=30, cap_seconds=3600, floor_seconds=5)
    assert [policy.delay(n, 1.0).total_seconds() for n in range(1, 9)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
    ]
    assert policy.delay(3, 0.5) == timedelta(seconds=60)
    assert policy.delay(3, 0.0) == timedelta(seconds=5)


def test_member_statuses_from_the_platform() -> None:
    assert MemberStatus.from_platform("Active") is MemberStatus.active
    assert MemberStatus.from_platform("Deleted") is MemberStatus.deleted
    assert MemberStatus.from_platform(None) is MemberStatus.active
    assert MemberStatus.from_platform("Suspended") is MemberStatus.active
