"""Which design an activity (resource link) runs, within the launch's tenant.

An activity is bound to a design in one of three ways (``core.catalogue.BindingMethod``):

- **deep linking**: the instructor picks a design when adding the activity; the response carries
  the custom parameter ``design=ID`` and the tool notes the offer; the activity's first launch
  finds that offer and records the binding as made by deep linking, by that instructor;
- **custom parameter**: the activity (or tool) in the VLE has ``design=ID`` or ``design=ID@VERSION``
  typed in; the first launch records the binding;
- **instructor**: chosen on the tool's Designs page. Such a binding is not overridden by the
  custom parameter; the other two follow it when an instructor edits it in the VLE.

Services flush but never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import (
    DESIGN_CUSTOM_PARAMETER,
    BindingMethod,
    DeepLinkOffer,
    DesignReference,
    DesignVersionInfo,
    LaunchDesign,
    ResourceLinkBindingInfo,
    Tenant,
    parse_design_reference,
)
from adaptive_lti.core.errors import NotFoundError
from adaptive_lti.core.lti import LaunchContext, Person, RecordedLaunch, RegistrationStatus
from adaptive_lti.db import audit_repo, designs_repo, launches_repo, registrations_repo
from adaptive_lti.db.audit_repo import AuditAction
from adaptive_lti.services.design_publishing import resolve

# How long a deep-linking choice waits for the first launch of the activity it created: the
# teacher saves Moodle's "add activity" form within minutes; a month covers courses prepared early.
DEEP_LINK_OFFER_LIFETIME = timedelta(days=30)


def _who(person: Person) -> str:
    name = person.display_name
    return name if person.subject is None else f"{name} (user {person.subject})"


def _launch_place(session: Session, launch: LaunchContext) -> tuple[int, int] | None:
    """(registration id, deployment pk) of a verified launch; None when the deployment is not
    recorded (an inactive-deployment launch)."""
    found = registrations_repo.lookup_registration(
        session, launch.issuer, launch.client_id, launch.deployment_id
    )
    if found is None or found.deployment is None:
        return None
    return found.registration.id, found.deployment.id


def tenant_of(session: Session, launch: LaunchContext) -> Tenant:
    """The tenant a verified launch belongs to: its platform registration."""
    found = registrations_repo.find_registration(session, launch.issuer, launch.client_id)
    if found is None:
        raise NotFoundError(
            f"The platform {launch.issuer} (client id {launch.client_id}) is no longer "
            "registered with the tool.",
            hint="Ask an administrator to register it again ('adaptive-lti platform add').",
        )
    return Tenant(found.id)


def _active_launch_place(session: Session, launch: LaunchContext) -> tuple[int, int]:
    """``_launch_place``, refused when the launch's deployment is not active in the tool (now:
    an instructor session outlives its launch, and may outlive the deployment's deactivation)."""
    found = registrations_repo.lookup_registration(
        session, launch.issuer, launch.client_id, launch.deployment_id
    )
    active = (
        found is not None
        and found.deployment is not None
        and found.deployment.active
        and found.registration.status is RegistrationStatus.active
    )
    if not active or found is None or found.deployment is None:
        raise NotFoundError(
            f"The deployment {launch.deployment_id!r} of {launch.issuer} is not active in the tool.",
            hint="Ask an administrator to activate it ('adaptive-lti platform "
            "activate-deployment'), then open the activity again.",
        )
    return found.registration.id, found.deployment.id


def bind_resource_link(
    session: Session,
    launch: LaunchContext,
    reference: DesignReference,
    *,
    bound_by: str,
    now: datetime,
    method: BindingMethod = BindingMethod.instructor,
) -> ResourceLinkBindingInfo:
    """Bind the launch's activity to a design (replacing any binding it had)."""
    if launch.resource_link is None:
        raise NotFoundError(
            "This launch is not from an activity (it carries no resource link), so there is "
            "nothing to bind a design to.",
            hint="Open the activity itself from the course page.",
        )
    registration_id, deployment_pk = _active_launch_place(session, launch)
    tenant = Tenant(registration_id)
    resolve(session, tenant, reference)
    audit_repo.append(
        session,
        audit_repo.Actor.of_person(launch.person),
        AuditAction.binding_instructor,
        registration_id,
        f"resource link {launch.resource_link.id}",
        {"design": str(reference), "deployment_id": launch.deployment_id, "method": method.value},
        now=now,
    )
    return designs_repo.set_binding(
        session,
        tenant,
        deployment_pk=deployment_pk,
        resource_link_id=launch.resource_link.id,
        context_id=launch.context.id if launch.context else None,
        design_id=reference.design_id,
        pinned_version=reference.version,
        bound_by=bound_by,
        method=method,
        now=now,
    )


def record_deep_link(
    session: Session, launch: LaunchContext, reference: DesignReference, *, now: datetime
) -> tuple[DeepLinkOffer, DesignVersionInfo]:
    """Note that the instructor returned ``reference`` by deep linking (bound at first launch)."""
    registration_id, deployment_pk = _active_launch_place(session, launch)
    tenant = Tenant(registration_id)
    version = resolve(session, tenant, reference)
    offer = designs_repo.add_deep_link_offer(
        session,
        tenant,
        deployment_pk=deployment_pk,
        context_id=launch.context.id if launch.context else None,
        design_id=reference.design_id,
        pinned_version=reference.version,
        created_by=_who(launch.person),
        now=now,
    )
    audit_repo.append(
        session,
        audit_repo.Actor.of_person(launch.person),
        AuditAction.binding_deep_link,
        registration_id,
        f"deep link {offer.id}",
        {
            "design": str(reference),
            "deployment_id": launch.deployment_id,
            "context_id": offer.context_id,
        },
        now=now,
    )
    return offer, version


def custom_design_reference(launch: LaunchContext) -> DesignReference | None:
    """The ``design`` custom parameter of a launch, parsed (None when absent or empty)."""
    value = launch.custom.get(DESIGN_CUSTOM_PARAMETER)
    if value is None or not value.strip():
        return None
    return parse_design_reference(value)


def design_for_launch(
    session: Session,
    launch: LaunchContext,
    *,
    now: datetime,
    recorded: RecordedLaunch | None = None,
) -> LaunchDesign | None:
    """The design this launch's activity runs, recording the binding on its first launch.

    None when the activity is bound to nothing and names no design (the instructor then picks
    one; a learner is told the activity is not set up yet), or when the launch is not from an
    activity (deep linking). Raises ``NotFoundError`` when the named design or version is not
    published, and ``InvalidInputError`` when the custom parameter is malformed. ``recorded``
    (what recording the launch returned) saves looking the deployment up again.
    """
    if launch.resource_link is None:
        return None
    if recorded is not None:
        place: tuple[int, int] | None = (recorded.registration_id, recorded.deployment_pk)
    else:
        place = _launch_place(session, launch)
    if place is None:
        return None
    registration_id, deployment_pk = place
    tenant = Tenant(registration_id)
    requested = custom_design_reference(launch)
    binding = designs_repo.find_binding(session, tenant, deployment_pk, launch.resource_link.id)
    if binding is not None:
        if (
            requested is not None
            and requested != binding.reference
            and binding.method is not BindingMethod.instructor
        ):
            # The activity's custom parameter was edited in the VLE since the first launch.
            resolve(session, tenant, requested)
            binding = designs_repo.set_binding(
                session,
                tenant,
                deployment_pk=deployment_pk,
                resource_link_id=launch.resource_link.id,
                context_id=launch.context.id if launch.context else None,
                design_id=requested.design_id,
                pinned_version=requested.version,
                bound_by=f"custom parameter design={requested} (changed; launch by "
                f"{_who(launch.person)})",
                method=BindingMethod.custom_parameter,
                now=now,
            )
            return LaunchDesign(binding, resolve(session, tenant, requested), newly_bound=True)
        return LaunchDesign(binding, resolve(session, tenant, binding.reference), newly_bound=False)
    if requested is None:
        return None
    version = resolve(session, tenant, requested)
    context_id = launch.context.id if launch.context else None
    offer = designs_repo.take_deep_link_offer(
        session,
        tenant,
        deployment_pk=deployment_pk,
        context_id=context_id,
        design_id=requested.design_id,
        pinned_version=requested.version,
        created_after=now - DEEP_LINK_OFFER_LIFETIME,
        now=now,
    )
    if offer is not None:
        method, bound_by = BindingMethod.deep_link, offer.created_by
    else:
        method = BindingMethod.custom_parameter
        bound_by = f"custom parameter design={requested} (first launch by {_who(launch.person)})"
    binding, created = designs_repo.insert_binding_if_absent(
        session,
        tenant,
        deployment_pk=deployment_pk,
        resource_link_id=launch.resource_link.id,
        context_id=context_id,
        design_id=requested.design_id,
        pinned_version=requested.version,
        bound_by=bound_by,
        method=method,
        now=now,
    )
    if not created:
        # A concurrent first launch bound it first: run what it bound.
        version = resolve(session, tenant, binding.reference)
    return LaunchDesign(binding, version, newly_bound=created)


def launch_of_session(session: Session, launch_id: int) -> LaunchContext:
    """The launch a tool session belongs to, as recorded (for the pages that follow a launch)."""
    launch = launches_repo.launch_context(session, launch_id)
    if launch is None:
        raise NotFoundError(
            "The launch this session belongs to is no longer recorded.",
            hint="Open the activity again from your course page.",
        )
    return launch


def bindings_of(session: Session, tenant: Tenant, design_id: str) -> list[ResourceLinkBindingInfo]:
    return designs_repo.list_bindings(session, tenant, design_id)
