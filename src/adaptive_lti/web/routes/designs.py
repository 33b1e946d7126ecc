"""The instructor's design pages: the catalogue, an upload checked before publishing, and the
design this activity runs.

Every handler needs the tool session of an instructor (``InstructorDep``); forms carry it in the
``tool_session`` field, because Moodle's iframe may refuse the tool's cookie. The upload is checked
(loaded and linted, compared with what is published) and shown before anything is stored; the
publish button then sends the same text back, and publishing checks it all again.

Everything here is the tenant's of the tool session (the platform registration it was launched
from): its catalogue, its bindings; only a design's owners and administrators publish new
versions of it (a 403 page says so and how to copy it under a new id).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from adaptive_lti.core.catalogue import (
    BindingMethod,
    DesignReference,
    Tenant,
    parse_design_reference,
)
from adaptive_lti.core.errors import InvalidInputError, NotFoundError
from adaptive_lti.core.loader import MAX_DESIGN_BYTES, read_design
from adaptive_lti.core.lti import LaunchContext
from adaptive_lti.db import audit_repo
from adaptive_lti.lti import session as tool_session
from adaptive_lti.services import design_bindings, design_publishing
from adaptive_lti.web.deps import InstructorDep, NowDep, SessionDep
from adaptive_lti.web.templating import templates

router = APIRouter()

MAX_FILENAME = 200
# The name problems are reported under when the design was pasted rather than uploaded.
PASTED_NAME = "pasted.yaml"
SessionField = Annotated[str | None, Form(alias=tool_session.FIELD)]


def _who(launch: LaunchContext) -> str:
    person = launch.person
    where = (launch.context.title or launch.context.id) if launch.context else launch.issuer
    return f"{person.display_name} (user {person.subject}, {where})"


def _token(request: Request, form_value: str | None) -> str:
    """The session token to put in the next page's forms (as it came with this request)."""
    return (
        form_value
        or request.query_params.get(tool_session.FIELD)
        or request.headers.get(tool_session.HEADER)
        or request.cookies.get(tool_session.COOKIE)
        or ""
    )


def _tenant(instructor: InstructorDep) -> Tenant:
    return Tenant(instructor.registration_id)


def _page(
    request: Request,
    session: SessionDep,
    tenant: Tenant,
    launch: LaunchContext,
    token: str,
    now: NowDep,
    **extra: Any,
) -> Response:
    # Reading the binding through design_for_launch also records one named by the activity's
    # custom parameter, exactly as a learner's launch would.
    binding_problem: str | None = None
    try:
        current = design_bindings.design_for_launch(session, launch, now=now)
    except (NotFoundError, InvalidInputError) as error:
        # The activity names a design that is not published (or not a design at all): the
        # instructor is the one who can fix it, so show it here rather than refuse the page.
        current, binding_problem = None, str(error)
    response = templates.TemplateResponse(
        request,
        "designs/instructor.html",
        {
            "launch": launch,
            "designs": design_publishing.list_designs(session, tenant),
            "current": current,
            "binding_problem": binding_problem,
            "tool_session": token,
            "session_field": tool_session.FIELD,
            "max_kib": MAX_DESIGN_BYTES // 1024,
            **extra,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.api_route("/lti/designs", methods=["GET", "POST"], include_in_schema=False)
def instructor_designs(
    request: Request,
    instructor: InstructorDep,
    session: SessionDep,
    now: NowDep,
    token: SessionField = None,
) -> Response:
    launch = design_bindings.launch_of_session(session, instructor.launch_id)
    return _page(request, session, _tenant(instructor), launch, _token(request, token), now)


def _read_upload(upload: UploadFile) -> tuple[str, str]:
    # A plain def handler runs in the threadpool, so the blocking read is fine here.
    data = upload.file.read(MAX_DESIGN_BYTES + 1)
    filename = (upload.filename or "design.yaml")[:MAX_FILENAME]
    if len(data) > MAX_DESIGN_BYTES:
        raise InvalidInputError(
            f"{filename} is larger than {MAX_DESIGN_BYTES // (1024 * 1024)} MB.",
            hint="A design file is a short YAML file; check that you chose the right file.",
        )
    try:
        return filename, data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # The loader says where: the line and column of the first byte that is not UTF-8.
        where = next((str(p) for p in read_design(data, filename)[1] if p.code == "encoding"), "")
        raise InvalidInputError(
            f"{filename} is not UTF-8 text. {where}".strip(),
            hint="Save the design as UTF-8 (your editor's 'Save with encoding') and upload it again.",
        ) from None


@router.post("/lti/designs/check", include_in_schema=False)
def check_upload(
    request: Request,
    instructor: InstructorDep,
    session: SessionDep,
    design_file: Annotated[UploadFile | None, File()] = None,
    design_text: Annotated[str | None, Form(max_length=MAX_DESIGN_BYTES)] = None,
    token: SessionField = None,
) -> Response:
    """Load and lint the uploaded file (or the pasted text) and show the result; nothing is
    stored."""
    if design_text and design_text.strip():
        filename, source_text = PASTED_NAME, design_text
    elif design_file is not None and design_file.filename:
        filename, source_text = _read_upload(design_file)
    else:
        # A form sent with neither: browsers send an empty, unnamed file part for no file.
        raise InvalidInputError(
            "No design was given: no file was chosen and no text was pasted.",
            hint="Choose a design file (.yaml), or paste the design's YAML into the text box, "
            "then check it.",
        )
    launch = design_bindings.launch_of_session(session, instructor.launch_id)
    result = design_publishing.check_design(
        session,
        _tenant(instructor),
        source_text,
        filename,
        design_publishing.publisher_of(launch, _who(launch)),
    )
    return templates.TemplateResponse(
        request,
        "designs/check.html",
        {
            "check": result,
            "source_text": source_text,
            "tool_session": _token(request, token),
            "session_field": tool_session.FIELD,
            "from_activity": instructor.resource_link_pk is not None,
        },
        status_code=200 if result.outcome else 422,
    )


@router.post("/lti/designs/publish", include_in_schema=False)
def publish_upload(
    request: Request,
    instructor: InstructorDep,
    session: SessionDep,
    now: NowDep,
    source_text: Annotated[str, Form(max_length=MAX_DESIGN_BYTES)],
    filename: Annotated[str, Form(max_length=MAX_FILENAME)],
    token: SessionField = None,
    use_here: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    launch = design_bindings.launch_of_session(session, instructor.launch_id)
    audit_repo.act_as(session, audit_repo.Actor.of_person(launch.person))
    tenant = _tenant(instructor)
    result = design_publishing.publish_design(
        session,
        tenant,
        source_text,
        filename,
        design_publishing.publisher_of(launch, _who(launch)),
        now=now,
    )
    version = result.version
    message = (
        f"Published {version.design_id} version {version.version} (“{version.title}”)."
        if result.created
        else f"{version.design_id} version {version.version} was already published with this "
        "content: nothing changed."
    )
    if use_here and launch.resource_link is not None:
        # "Publish and use for this activity": the same binding as the catalogue's button.
        binding = design_bindings.bind_resource_link(
            session,
            launch,
            DesignReference(version.design_id, None),
            bound_by=_who(launch),
            method=BindingMethod.instructor,
            now=now,
        )
        message += f" This activity now runs {binding.reference} (following newer versions)."
    return _page(request, session, tenant, launch, _token(request, token), now, message=message)


@router.post("/lti/designs/bind", include_in_schema=False)
def bind_activity(
    request: Request,
    instructor: InstructorDep,
    session: SessionDep,
    now: NowDep,
    design: Annotated[str, Form(max_length=200)],
    pin: Annotated[str | None, Form(max_length=20)] = None,
    token: SessionField = None,
) -> Response:
    launch = design_bindings.launch_of_session(session, instructor.launch_id)
    tenant = _tenant(instructor)
    reference = parse_design_reference(design)
    if pin and reference.version is None:
        latest = design_publishing.get_design_version(session, tenant, reference.design_id)
        reference = DesignReference(reference.design_id, latest.version)
    binding = design_bindings.bind_resource_link(
        session,
        launch,
        reference,
        bound_by=_who(launch),
        method=BindingMethod.instructor,
        now=now,
    )
    how = "pinned to that version" if binding.pinned_version else "following newer versions"
    return _page(
        request,
        session,
        tenant,
        launch,
        _token(request, token),
        now,
        message=f"This activity now runs {binding.reference} ({how}).",
    )
