"""A learner's launch of an activity bound to a design: ``begin_or_resume`` finds or creates the
learner's enrolment (a new launch on any device continues where they were), records what the tool
knows of them (the launch's custom parameters, role, ``lis`` ids and locale, intake answers and
outcomes recorded for the same person in other courses of the same platform), moves them to a
newer version of the design when it declares how, and returns the engine's decision.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import LaunchDesign, Tenant
from adaptive_lti.core.design import Attribute, AttributeSource
from adaptive_lti.core.errors import NotFoundError
from adaptive_lti.core.events import AttributeSet, AttributeValue, Launched
from adaptive_lti.core.journey import Enrolment, JourneyView
from adaptive_lti.core.learner import coerce_attribute
from adaptive_lti.core.lti import LaunchContext, RecordedLaunch
from adaptive_lti.core.migration import migrate
from adaptive_lti.db import journey_repo
from adaptive_lti.services import design_publishing
from adaptive_lti.services.journey.reading import journey_for
from adaptive_lti.services.journey.recording import record


def _launch_fields(launch: LaunchContext) -> dict[str, str]:
    """Launch fields a design may read with ``sources: [launch]`` (``key`` names the field)."""
    fields: dict[str, str] = {}
    if launch.locale:
        fields["locale"] = launch.locale
    if launch.context is not None:
        fields["context_id"] = launch.context.id
        for name, value in (
            ("context_label", launch.context.label),
            ("context_title", launch.context.title),
        ):
            if value:
                fields[name] = value
    if launch.resource_link is not None:
        fields["resource_link_id"] = launch.resource_link.id
    # LTI Core 1.3 §5.4.4: the lis claim (SIS ids of the person and the course section).
    for name, value in (launch.lis or {}).items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            fields[f"lis_{name}"] = str(value)
    if launch.person.person_sourcedid:
        fields.setdefault("lis_person_sourcedid", launch.person.person_sourcedid)
    return fields


def _role(launch: LaunchContext) -> str:
    if launch.is_instructor:
        return "instructor"
    names = {role.principal for role in launch.roles}
    for name in ("Learner", "Mentor", "Member"):
        if name in names:
            return name.lower()
    return "learner" if not names else sorted(names)[0].lower()


def launched_event(launch: LaunchContext, now: datetime) -> Launched:
    return Launched(
        at=now,
        custom={str(k): str(v) for k, v in launch.custom.items()},
        launch=_launch_fields(launch),
        role=_role(launch),
    )


def _from_earlier(
    attribute_id: str, attribute: Attribute, records: list[journey_repo.EarlierRecord]
) -> tuple[AttributeValue, str] | None:
    """A value for an attribute from the person's other enrolments: an ``outcome`` the tool
    recorded (``<design>.grade``, ``<design>.passed``, ``[<design>.]<activity>.score``, or an
    attribute of the same name), or an answer they gave to the same intake question."""
    key = attribute.key or attribute_id
    for source in attribute.sources:
        if source is AttributeSource.outcome:
            for record in records:
                raw = _outcome_value(key, record)
                value = coerce_attribute(attribute, raw)
                if value is not None:
                    return value, "outcome"
        elif source is AttributeSource.intake:
            for record in records:
                if record.state.attribute_sources.get(attribute_id) != "intake":
                    continue
                value = coerce_attribute(attribute, record.state.attributes.get(attribute_id))
                if value is not None:
                    return value, "intake"
    return None


def _outcome_value(key: str, record: journey_repo.EarlierRecord) -> object:
    design_id, _, rest = key.partition(".")
    if design_id == record.design_id:
        if rest == "grade":
            return record.grade
        if rest == "passed":
            return record.passed
        if rest == "completed":
            return record.completed
        key = rest
    activity, _, field = key.rpartition(".")
    if activity and field in {"score", "passed", "completed"}:
        outcome = record.state.outcomes.get(activity)
        if outcome is None:
            return None
        return getattr(outcome, field) if outcome.completed else None
    return record.state.attributes.get(key)


def begin_or_resume(
    session: Session,
    launch: LaunchContext,
    launch_design: LaunchDesign,
    recorded: RecordedLaunch,
    now: datetime,
) -> JourneyView:
    """Start the learner on the activity's design, or continue where they were."""
    if recorded.resource_link_pk is None or recorded.user_pk is None or not launch.person.subject:
        raise NotFoundError(
            "This launch names no activity or no user, so there is no journey to follow.",
            hint="Open the activity itself from your course page.",
        )
    design_id = launch_design.binding.design_id
    tenant = Tenant(recorded.registration_id)
    enrolment = journey_repo.find_enrolment(
        session,
        tenant,
        resource_link_pk=recorded.resource_link_pk,
        user_pk=recorded.user_pk,
        design_id=design_id,
    )
    if enrolment is None:
        enrolment = journey_repo.insert_enrolment(
            session,
            registration_id=recorded.registration_id,
            deployment_pk=recorded.deployment_pk,
            context_pk=recorded.context_pk,
            resource_link_pk=recorded.resource_link_pk,
            user_pk=recorded.user_pk,
            user_sub=launch.person.subject,
            binding_id=launch_design.binding.id,
            design_id=design_id,
            design_version=launch_design.version.version,
            ags_endpoint=launch.ags_endpoint,
            locale=launch.locale,
            now=now,
        ) or journey_repo.find_enrolment(
            session,
            tenant,
            resource_link_pk=recorded.resource_link_pk,
            user_pk=recorded.user_pk,
            design_id=design_id,
        )
        assert enrolment is not None
    else:
        journey_repo.note_launch(
            session, enrolment.id, ags_endpoint=launch.ags_endpoint, locale=launch.locale, now=now
        )
        enrolment = journey_repo.get_enrolment(session, enrolment.id) or enrolment
        if launch_design.version.version > enrolment.design_version:
            enrolment = _migrate_if_declared(session, enrolment, launch_design, now)
    view = record(session, enrolment, launched_event(launch, now), now)
    design = view.design
    records: list[journey_repo.EarlierRecord] | None = None
    for attribute_id, attribute in design.design.attributes.items():
        if attribute_id in view.state.attributes:
            continue
        if not {AttributeSource.outcome, AttributeSource.intake} & set(attribute.sources):
            continue
        if records is None:
            records = journey_repo.earlier_records(
                session, tenant, user_pk=enrolment.user_pk, except_enrolment=enrolment.id
            )
        found = _from_earlier(attribute_id, attribute, records)
        if found is not None:
            value, source = found
            event = AttributeSet(
                at=now,
                attribute=attribute_id,
                value=value,
                source="outcome" if source == "outcome" else "intake",
            )
            view = record(
                session, enrolment, event, now, expected_sequence=view.event_count, current=view
            )
    return view


def _migrate_if_declared(
    session: Session, enrolment: Enrolment, launch_design: LaunchDesign, now: datetime
) -> Enrolment:
    """Move the learner to the activity's newer version when it declares a migration for where
    they are; otherwise they stay on the version they started (it never changes under them)."""
    current = journey_for(session, enrolment.id, enrolment=enrolment)
    newer = design_publishing.compiled_design(launch_design.version)
    moved = migrate(current.state, newer, now)
    if moved is None:
        return enrolment
    _state, event = moved
    journey_repo.set_design_version(session, enrolment.id, newer.version)
    migrated = dataclasses.replace(enrolment, design_version=newer.version)
    record(session, migrated, event, now, expected_sequence=current.event_count)
    return migrated
