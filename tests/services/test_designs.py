"""Publishing designs and binding activities to them, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import (
    BindingMethod,
    DesignReference,
    content_hash,
    parse_design_reference,
)
from adaptive_lti.core.design import Page
from adaptive_lti.core.errors import ConflictError, DesignError, InvalidInputError, NotFoundError
from adaptive_lti.core.lint import lint
from adaptive_lti.core.loader import load_design
from adaptive_lti.db import launches_repo, registrations_repo
from adaptive_lti.db.tables import Design, DesignBinding, DesignDeepLink, DesignVersion
from adaptive_lti.services import design_bindings, design_publishing
from tests.design_samples import (
    INSTRUCTOR,
    INTRO_V1,
    INTRO_WITH_DEAD_END,
    INTRO_WITH_WARNING,
    NOW,
    UNGRADED,
    WITH_PAGE_FILE,
    by,
    deep_linking_launch,
    intro,
    launch_context,
    register_platform,
    tenant,
)


def counts(session: Session) -> dict[str, int]:
    return {
        table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
        for table in (Design, DesignVersion, DesignBinding, DesignDeepLink)
    }


# --- publishing ----------------------------------------------------------------------------


def test_publish_stores_the_version_with_its_lint_summary(session: Session) -> None:
    result = design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("designer@uni"), now=NOW
    )
    assert result.created
    version = result.version
    assert (version.design_id, version.version) == ("sample-programming", 1)
    assert version.title == "Introduction to Programming"
    assert version.published_by == "designer@uni"
    assert version.published_at == NOW
    assert version.sends_grade
    assert version.content_hash == content_hash(INTRO_V1)
    assert (version.lint.errors, version.lint.warnings) == (0, 0)
    stored = design_publishing.get_design_version(session, tenant(session), "sample-programming")
    assert stored.source_text == INTRO_V1
    assert stored == design_publishing.get_design_version(
        session, tenant(session), "sample-programming", 1
    )


def test_publishing_identical_content_again_changes_nothing(session: Session) -> None:
    first = design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    before = counts(session)
    # The same file saved with Windows line endings, published later by someone else.
    again = design_publishing.publish_design(
        session,
        tenant(session),
        INTRO_V1.replace("\n", "\r\n"),
        "intro.yaml",
        by("b"),
        now=NOW + timedelta(hours=1),
    )
    assert not again.created
    assert again.version == first.version
    assert again.version.published_by == "a"
    assert counts(session) == before


def test_same_version_with_other_content_is_a_conflict(session: Session) -> None:
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    changed = INTRO_V1.replace("Variables hold values.", "Variables hold values!")
    with pytest.raises(ConflictError) as raised:
        design_publishing.publish_design(
            session, tenant(session), changed, "intro.yaml", by("a"), now=NOW
        )
    assert raised.value.message == (
        "version 1 of sample-programming is already published with other content; "
        "raise `version:` in the file"
    )
    assert "version: 2" in raised.value.hint
    assert (
        design_publishing.get_design_version(
            session, tenant(session), "sample-programming"
        ).source_text
        == INTRO_V1
    )


def test_a_new_version_is_published_beside_the_old_one(session: Session) -> None:
    design_publishing.publish_design(
        session, tenant(session), intro(1), "intro.yaml", by("a"), now=NOW
    )
    design_publishing.publish_design(
        session, tenant(session), intro(2, title="Programming 101"), "intro.yaml", by("a"), now=NOW
    )
    [summary] = design_publishing.list_designs(session, tenant(session))
    assert (summary.design_id, summary.latest_version, summary.version_count) == (
        "sample-programming",
        2,
        2,
    )
    assert summary.title == "Programming 101"
    assert [
        v.version
        for v in design_publishing.list_versions(session, tenant(session), "sample-programming")
    ] == [2, 1]


def test_a_version_older_than_the_newest_is_refused(session: Session) -> None:
    design_publishing.publish_design(
        session, tenant(session), intro(3), "intro.yaml", by("a"), now=NOW
    )
    with pytest.raises(ConflictError, match="older than the published version 3"):
        design_publishing.publish_design(
            session, tenant(session), intro(2), "intro.yaml", by("a"), now=NOW
        )


def test_lint_errors_refuse_publishing_and_name_their_lines(session: Session) -> None:
    with pytest.raises(DesignError) as raised:
        design_publishing.publish_design(
            session, tenant(session), INTRO_WITH_DEAD_END, "intro.yaml", by("a"), now=NOW
        )
    [problem] = raised.value.problems
    # The linter's own problem, with where it is in the file.
    [expected] = lint(load_design(INTRO_WITH_DEAD_END, "intro.yaml"))
    assert problem == expected
    assert problem.severity == "error" and problem.file == "intro.yaml"
    assert 19 <= problem.line <= 22 and problem.column > 0  # the branch of the route
    assert "prior_programming=some" in problem.message
    assert str(raised.value).startswith(f"intro.yaml:{problem.line}:{problem.column}: error:")
    assert counts(session)["design_version"] == 0


def test_a_file_that_does_not_load_is_refused_with_its_problems(session: Session) -> None:
    broken = INTRO_V1.replace("kind: page", "kind: pgae")
    with pytest.raises(DesignError) as raised:
        design_publishing.publish_design(
            session, tenant(session), broken, "intro.yaml", by("a"), now=NOW
        )
    assert all(p.line > 0 for p in raised.value.problems)
    assert counts(session)["design"] == 0


def test_warnings_are_kept_with_the_version(session: Session) -> None:
    result = design_publishing.publish_design(
        session, tenant(session), INTRO_WITH_WARNING, "intro.yaml", by("a"), now=NOW
    )
    assert (result.version.lint.errors, result.version.lint.warnings) == (0, 1)
    assert "attribute 'goal' is never used" in result.version.lint.messages[0]
    [summary] = design_publishing.list_designs(session, tenant(session))
    assert summary.latest.lint == result.version.lint


def test_page_files_are_stored_with_the_version_and_part_of_its_content(session: Session) -> None:
    result = design_publishing.publish_design(
        session,
        tenant(session),
        WITH_PAGE_FILE,
        "course.yaml",
        by("a"),
        now=NOW,
        page_bodies={"intro": "# Hello"},
    )
    compiled = design_publishing.compiled_design(
        design_publishing.get_design_version(session, tenant(session), "with-files")
    )
    page = compiled.activity("intro")
    assert isinstance(page, Page) and page.body == "# Hello"
    assert result.version.content_hash == content_hash(WITH_PAGE_FILE, {"intro": "# Hello"})
    with pytest.raises(ConflictError):
        design_publishing.publish_design(
            session,
            tenant(session),
            WITH_PAGE_FILE,
            "course.yaml",
            by("a"),
            now=NOW,
            page_bodies={"intro": "# Bye"},
        )


def test_unknown_designs_and_versions_are_clear_not_found_errors(session: Session) -> None:
    with pytest.raises(NotFoundError, match="No design 'nope' is published"):
        design_publishing.get_design_version(session, tenant(session), "nope")
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    with pytest.raises(NotFoundError, match=r"Version 7 of sample-programming .*published: 1"):
        design_publishing.get_design_version(session, tenant(session), "sample-programming", 7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sample-programming", DesignReference("sample-programming")),
        (" sample-programming@3 ", DesignReference("sample-programming", 3)),
    ],
)
def test_design_references_parse(text: str, expected: DesignReference) -> None:
    assert parse_design_reference(text) == expected


@pytest.mark.parametrize("text", ["", "Intro", "intro@", "intro@0", "intro@x", "a b", "@3"])
def test_malformed_design_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_design_reference(text)


# --- binding activities --------------------------------------------------------------------


def test_the_custom_parameter_binds_the_activity_on_its_first_launch(session: Session) -> None:
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    launch = launch_context(custom={"design": "sample-programming"})
    first = design_bindings.design_for_launch(session, launch, now=NOW)
    assert first is not None and first.newly_bound
    assert first.binding.method is BindingMethod.custom_parameter
    assert first.binding.pinned_version is None
    assert (first.binding.resource_link_id, first.binding.context_id) == ("1", "2")
    assert "Student One (user 3)" in first.binding.bound_by
    assert first.version.version == 1
    again = design_bindings.design_for_launch(session, launch, now=NOW + timedelta(minutes=5))
    assert again is not None and not again.newly_bound
    assert again.binding == first.binding
    assert counts(session)["design_binding"] == 1


def test_an_unpinned_activity_follows_the_newest_version(session: Session) -> None:
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), intro(1), "intro.yaml", by("a"), now=NOW
    )
    launch = launch_context(custom={"design": "sample-programming"})
    design_bindings.design_for_launch(session, launch, now=NOW)
    design_publishing.publish_design(
        session, tenant(session), intro(2), "intro.yaml", by("a"), now=NOW
    )
    found = design_bindings.design_for_launch(session, launch, now=NOW)
    assert found is not None and found.version.version == 2


def test_a_pinned_activity_stays_on_its_version(session: Session) -> None:
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), intro(1), "intro.yaml", by("a"), now=NOW
    )
    design_publishing.publish_design(
        session, tenant(session), intro(2), "intro.yaml", by("a"), now=NOW
    )
    launch = launch_context(custom={"design": "sample-programming@1"})
    found = design_bindings.design_for_launch(session, launch, now=NOW)
    assert found is not None
    assert (found.binding.pinned_version, found.version.version) == (1, 1)


def test_an_activity_without_design_or_binding_runs_nothing(session: Session) -> None:
    register_platform(session)
    assert design_bindings.design_for_launch(session, launch_context(), now=NOW) is None
    assert design_bindings.design_for_launch(session, deep_linking_launch(), now=NOW) is None
    assert counts(session)["design_binding"] == 0


def test_a_custom_parameter_naming_an_unpublished_design_binds_nothing(session: Session) -> None:
    register_platform(session)
    with pytest.raises(NotFoundError, match="No design 'missing'"):
        design_bindings.design_for_launch(
            session, launch_context(custom={"design": "missing"}), now=NOW
        )
    with pytest.raises(InvalidInputError):
        design_bindings.design_for_launch(
            session, launch_context(custom={"design": "Bad Id"}), now=NOW
        )
    assert counts(session)["design_binding"] == 0


def test_a_deep_linked_design_is_bound_by_the_instructor_at_first_launch(
    session: Session,
) -> None:
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    offer, version = design_bindings.record_deep_link(
        session, deep_linking_launch(), DesignReference("sample-programming"), now=NOW
    )
    assert version.version == 1 and offer.created_by == "Teacher One (user 4)"
    learner = launch_context(custom={"design": "sample-programming"})
    found = design_bindings.design_for_launch(session, learner, now=NOW + timedelta(minutes=2))
    assert found is not None and found.newly_bound
    assert found.binding.method is BindingMethod.deep_link
    assert found.binding.bound_by == "Teacher One (user 4)"
    # The offer is used up: a second activity with the same custom parameter is a custom-param one.
    other = launch_context(custom={"design": "sample-programming"}, resource_link_id="9")
    second = design_bindings.design_for_launch(session, other, now=NOW + timedelta(minutes=3))
    assert second is not None and second.binding.method is BindingMethod.custom_parameter


def test_a_deep_link_offer_from_another_course_is_not_taken(session: Session) -> None:
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    design_bindings.record_deep_link(
        session,
        deep_linking_launch(context_id="77"),
        DesignReference("sample-programming"),
        now=NOW,
    )
    found = design_bindings.design_for_launch(
        session, launch_context(custom={"design": "sample-programming"}), now=NOW
    )
    assert found is not None and found.binding.method is BindingMethod.custom_parameter


def test_an_edited_custom_parameter_rebinds_but_an_instructor_choice_stays(
    session: Session,
) -> None:
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    design_publishing.publish_design(
        session, tenant(session), UNGRADED, "club.yaml", by("a"), now=NOW
    )
    design_bindings.design_for_launch(
        session, launch_context(custom={"design": "sample-programming"}), now=NOW
    )
    edited = launch_context(custom={"design": "reading-club"})
    found = design_bindings.design_for_launch(session, edited, now=NOW)
    assert found is not None and found.binding.design_id == "reading-club"
    instructor = launch_context(roles=(INSTRUCTOR,), subject="4", name="Teacher One")
    chosen = design_bindings.bind_resource_link(
        session,
        instructor,
        DesignReference("sample-programming", 1),
        bound_by="Teacher One (user 4)",
        now=NOW,
    )
    assert chosen.method is BindingMethod.instructor
    kept = design_bindings.design_for_launch(session, edited, now=NOW)
    assert kept is not None
    assert (kept.binding.design_id, kept.binding.pinned_version) == ("sample-programming", 1)
    assert counts(session)["design_binding"] == 1


def test_binding_to_an_unpublished_version_is_refused(session: Session) -> None:
    register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    with pytest.raises(NotFoundError):
        design_bindings.bind_resource_link(
            session,
            launch_context(),
            DesignReference("sample-programming", 2),
            bound_by="x",
            now=NOW,
        )
    assert counts(session)["design_binding"] == 0


def test_removing_the_registration_removes_its_designs_and_bindings(session: Session) -> None:
    registration_id = register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    design_bindings.design_for_launch(
        session, launch_context(custom={"design": "sample-programming"}), now=NOW
    )
    design_bindings.record_deep_link(
        session, deep_linking_launch(), DesignReference("sample-programming"), now=NOW
    )
    registrations_repo.remove_registration(session, registration_id)
    session.flush()
    session.expire_all()
    # Designs are the registration's (its tenant's): they go with it.
    assert counts(session) == {
        "design": 0,
        "design_version": 0,
        "design_binding": 0,
        "design_deep_link": 0,
    }


def test_a_page_file_that_did_not_come_with_the_design_is_refused(session: Session) -> None:
    with pytest.raises(DesignError) as raised:
        design_publishing.publish_design(
            session, tenant(session), WITH_PAGE_FILE, "course.yaml", by("a"), now=NOW
        )
    [problem] = raised.value.problems
    assert problem.code == "page-file-missing"
    assert "'intro.md'" in problem.message
    assert counts(session)["design"] == 0


def test_the_recorded_launch_saves_looking_the_deployment_up(session: Session) -> None:
    registration_id = register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    launch = launch_context(custom={"design": "sample-programming"})
    deployment = registrations_repo.find_deployment(session, registration_id, "1")
    assert deployment is not None
    recorded = launches_repo.record_launch(
        session, launch, registration_id=registration_id, deployment_pk=deployment.id, now=NOW
    )
    found = design_bindings.design_for_launch(session, launch, now=NOW, recorded=recorded)
    assert found is not None and found.newly_bound
    assert (found.binding.registration_id, found.binding.deployment_pk) == (
        registration_id,
        deployment.id,
    )
    assert design_bindings.design_for_launch(session, launch, now=NOW) == dataclasses.replace(
        found, newly_bound=False
    )


def test_listing_and_resolving_never_mix_up_texts(session: Session) -> None:
    design_publishing.publish_design(
        session, tenant(session), intro(1), "intro.yaml", by("a"), now=NOW
    )
    design_publishing.publish_design(
        session, tenant(session), intro(2, title="Second"), "intro.yaml", by("a"), now=NOW
    )
    [summary] = design_publishing.list_designs(session, tenant(session))
    assert summary.latest.source_text == ""  # listings leave the text in the database
    for version, title in ((1, "Introduction to Programming"), (2, "Second")):
        found = design_publishing.get_design_version(
            session, tenant(session), "sample-programming", version
        )
        assert found.source_text == intro(version, title=title)
        assert design_publishing.compiled_design(found).design.title == title
    assert design_publishing.get_design_version(
        session, tenant(session), "sample-programming"
    ).source_text == intro(2, title="Second")


@pytest.mark.parametrize("action", ["bind", "deep link"])
def test_a_session_from_a_since_deactivated_deployment_cannot_bind(
    session: Session, action: str
) -> None:
    """An instructor session issued before an administrator deactivated the deployment (sessions
    live for hours) may not bind activities or record deep-link choices through it."""
    registration_id = register_platform(session)
    design_publishing.publish_design(
        session, tenant(session), INTRO_V1, "intro.yaml", by("a"), now=NOW
    )
    registrations_repo.set_deployment_active(session, registration_id, "1", active=False, now=NOW)
    with pytest.raises(NotFoundError, match="not active"):
        if action == "bind":
            design_bindings.bind_resource_link(
                session,
                launch_context(),
                DesignReference("sample-programming"),
                bound_by="x",
                now=NOW,
            )
        else:
            design_bindings.record_deep_link(
                session, deep_linking_launch(), DesignReference("sample-programming"), now=NOW
            )
    assert counts(session)["design_binding"] == 0
    assert counts(session)["design_deep_link"] == 0
