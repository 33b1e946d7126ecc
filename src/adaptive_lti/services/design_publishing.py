"""Publishing designs into the tool: checking, storing, listing and reading their versions.

Publishing loads the file with ``core.loader`` (every problem with its line and column), lints it
with ``core.lint`` (errors refuse it, warnings are kept with the version) and stores it as an
immutable version. Publishing the identical content again changes nothing; the same id and version
with other content is refused, because learners part-way through a route stay on the version they
started and must never see it change under them.

Designs are a tenant's (``core.catalogue.Tenant``, a platform registration): every function takes
the tenant, or works it out from the verified launch, and reads and writes only that tenant's
designs. Within a tenant a design has owners: whoever published its first version through the
tool. Only owners, the tenant's administrators (the launch's Administrator role) and the command
line publish new versions; other instructors may bind it, and copy it under a new id.

Services flush but never commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import (
    DesignOwnerInfo,
    DesignReference,
    DesignSummary,
    DesignVersionInfo,
    LintSummary,
    Publisher,
    PublishResult,
    Tenant,
    content_hash,
)
from adaptive_lti.core.compiled import CompiledDesign
from adaptive_lti.core.design import Page
from adaptive_lti.core.errors import (
    ConflictError,
    DesignError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
)
from adaptive_lti.core.lint import lint
from adaptive_lti.core.loader import load_design
from adaptive_lti.core.lti import LaunchContext, RoleScope
from adaptive_lti.db import audit_repo, designs_repo
from adaptive_lti.db.audit_repo import AuditAction

MAX_PUBLISHED_BY = 255


def lint_summary(problems: list[Problem]) -> LintSummary:
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    return LintSummary(
        errors=len(errors),
        warnings=len(warnings),
        messages=tuple(str(p) for p in [*errors, *warnings]),
    )


def page_bodies_of(compiled: CompiledDesign) -> dict[str, str]:
    """The Markdown of pages written as ``file:`` (inlined by ``load_design_file``), by id."""
    return {
        activity_id: activity.body
        for activity_id, activity in compiled.design.activities.items()
        if isinstance(activity, Page) and activity.file is not None and activity.body is not None
    }


def _with_pages(compiled: CompiledDesign, page_bodies: Mapping[str, str]) -> CompiledDesign:
    if not page_bodies:
        return compiled
    activities = dict(compiled.design.activities)
    for activity_id, body in page_bodies.items():
        page = activities.get(activity_id)
        if isinstance(page, Page) and page.body is None:
            activities[activity_id] = page.model_copy(update={"body": body})
    design = compiled.design.model_copy(update={"activities": activities})
    return dataclasses.replace(compiled, design=design)


def is_administrator(launch: LaunchContext) -> bool:
    """The launch's roles make the user an administrator (LTI Core 1.3 §A.2: the Administrator
    role of the context, the institution or the system, or SysAdmin)."""
    return any(
        role.principal in {"Administrator", "SysAdmin"} and role.scope is not RoleScope.unknown
        for role in launch.roles
    )


def publisher_of(launch: LaunchContext, name: str) -> Publisher:
    """Who publishes from a launch: its user, named ``name``."""
    return Publisher(name, launch.person.subject, administrator=is_administrator(launch))


def may_publish(session: Session, tenant: Tenant, design_id: str, publisher: Publisher) -> bool:
    """Whether ``publisher`` may publish a version of the tenant's design ``design_id``."""
    if publisher.unrestricted:
        return True
    if publisher.subject is None:
        return False
    if not designs_repo.design_exists(session, tenant, design_id):
        return True  # the first version: its publisher becomes the owner
    return designs_repo.is_owner(session, tenant, design_id, publisher.subject)


def _not_an_owner(session: Session, tenant: Tenant, design_id: str) -> PermissionDeniedError:
    owners = designs_repo.list_owners(session, tenant, design_id)
    who = ", ".join(owner.name for owner in owners) or "nobody yet"
    return PermissionDeniedError(
        f"Only the owners of {design_id} publish new versions of it (owners: {who}), and the "
        "platform's administrators.",
        hint=f"Ask an owner to publish your changes, or copy it under a new id: change "
        f"`design: {design_id}` in the file to an id of your own (and `version:` to 1) and "
        "publish that. You may still use it for your activities as it is.",
    )


def _anonymous() -> PermissionDeniedError:
    return PermissionDeniedError(
        "Your platform sent no user id with this launch, so the tool cannot record you as the "
        "design's owner.",
        hint="Ask an administrator to publish it, or to publish it with 'adaptive-lti design "
        "publish FILE --platform ID'.",
    )


def publish_design(
    session: Session,
    tenant: Tenant,
    source_text: str,
    filename: str,
    publisher: Publisher,
    *,
    now: datetime,
    page_bodies: Mapping[str, str] | None = None,
) -> PublishResult:
    """Load, lint and store a design version into the tenant; identical content again is a no-op.

    A platform user (``publisher``) publishing a design's first version becomes its owner; a
    new version of an existing design needs an owner, an administrator or the command line
    (``PermissionDeniedError`` otherwise).

    ``page_bodies`` carries the Markdown of pages the file names with ``file:`` (the CLI reads
    them beside the file), so the stored version needs nothing from the disk it came from.

    Raises ``DesignError`` (every problem with file:line:column) when the file does not load or
    the linter reports errors, and ``ConflictError`` when the version is taken by other content
    or is older than the newest published version.
    """
    compiled = load_design(source_text, filename)
    problems = lint(compiled)
    summary = lint_summary(problems)
    if summary.errors:
        raise DesignError([p for p in problems if p.severity == "error"])
    design_id, version = compiled.id, compiled.version
    bodies = dict(page_bodies or {})
    missing = [
        Problem(
            f"page '{activity_id}' is kept in the file '{activity.file}', which did not come "
            "with the design",
            filename,
            hint="publish with 'adaptive-lti design publish FILE' from the design's folder, or "
            "write the page's Markdown in 'body:'",
            code="page-file-missing",
        )
        for activity_id, activity in compiled.design.activities.items()
        if isinstance(activity, Page)
        and activity.file is not None
        and activity.body is None
        and activity_id not in bodies
    ]
    if missing:
        raise DesignError(missing)
    digest = content_hash(source_text, bodies)
    existing = designs_repo.find_version(session, tenant, design_id, version)
    if existing is not None:
        return _same_or_conflict(existing, digest)
    first = not designs_repo.design_exists(session, tenant, design_id)
    if not may_publish(session, tenant, design_id, publisher):
        raise _anonymous() if first else _not_an_owner(session, tenant, design_id)
    latest = designs_repo.latest_version(session, tenant, design_id)
    if latest is not None and latest.version > version:
        raise ConflictError(
            f"{filename} is version {version} of {design_id}, older than the published "
            f"version {latest.version}.",
            hint=f"Raise `version:` in the file to {latest.version + 1} to publish it.",
        )
    stored = designs_repo.insert_version(
        session,
        tenant,
        design_id=design_id,
        version=version,
        title=compiled.design.title,
        source_text=source_text,
        page_bodies=bodies,
        content_hash=digest,
        lint=summary,
        sends_grade=compiled.design.grade is not None,
        published_by=publisher.name.strip()[:MAX_PUBLISHED_BY] or "unknown",
        now=now,
    )
    if stored is None:
        # Another process published this version between our read and our insert.
        raced = designs_repo.find_version(session, tenant, design_id, version)
        assert raced is not None
        return _same_or_conflict(raced, digest)
    audit_repo.append(
        session,
        audit_repo.acting(session, publisher.name),
        AuditAction.design_publish,
        tenant.registration_id,
        f"{design_id}@{version}",
        {"title": stored.title, "content_hash": digest, "published_by": stored.published_by},
        now=now,
    )
    if first and publisher.subject is not None:
        designs_repo.add_owner(
            session,
            tenant,
            design_id,
            subject=publisher.subject,
            name=publisher.name.strip()[:MAX_PUBLISHED_BY] or f"User {publisher.subject}",
            now=now,
        )
    return PublishResult(stored, created=True)


@dataclasses.dataclass(frozen=True)
class DesignCheck:
    """What publishing a file would do, worked out without storing anything (the upload page)."""

    filename: str
    problems: tuple[Problem, ...]
    design_id: str | None = None
    version: int | None = None
    title: str | None = None
    # "new", "identical" (already published: nothing to do), or None when it cannot be published.
    outcome: str | None = None
    # Why it cannot be published, when the file loads and lints but clashes with the catalogue.
    refusal: str | None = None

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity != "error")

    @property
    def publishable(self) -> bool:
        return self.outcome == "new"


def check_design(
    session: Session,
    tenant: Tenant,
    source_text: str,
    filename: str,
    publisher: Publisher | None = None,
) -> DesignCheck:
    """Load and lint a file and compare it with the tenant's catalogue, without publishing it
    (and, given the ``publisher``, whether they may publish it)."""
    try:
        compiled = load_design(source_text, filename)
    except DesignError as error:
        return DesignCheck(filename, tuple(error.problems))
    problems = tuple(lint(compiled))

    def result(outcome: str | None = None, refusal: str | None = None) -> DesignCheck:
        return DesignCheck(
            filename,
            problems,
            compiled.id,
            compiled.version,
            compiled.design.title,
            outcome=outcome,
            refusal=refusal,
        )

    if any(p.severity == "error" for p in problems):
        return result()
    file_pages = [
        activity_id
        for activity_id, activity in compiled.design.activities.items()
        if isinstance(activity, Page) and activity.file is not None
    ]
    if file_pages:
        return result(
            refusal=f"The pages {', '.join(file_pages)} are kept in files beside the design, "
            "which an upload cannot bring: publish it with 'adaptive-lti design publish FILE', "
            "or write the pages' Markdown in 'body:'."
        )
    existing = designs_repo.find_version(session, tenant, compiled.id, compiled.version)
    if existing is not None:
        if existing.content_hash == content_hash(source_text):
            return result(outcome="identical")
        return result(
            refusal=f"Version {compiled.version} of {compiled.id} is already published with "
            f"other content: raise `version:` in the file to {compiled.version + 1} or higher."
        )
    if publisher is not None and not may_publish(session, tenant, compiled.id, publisher):
        denied = (
            _anonymous()
            if not designs_repo.design_exists(session, tenant, compiled.id)
            else _not_an_owner(session, tenant, compiled.id)
        )
        return result(refusal=str(denied))
    latest = designs_repo.latest_version(session, tenant, compiled.id)
    if latest is not None and latest.version > compiled.version:
        return result(
            refusal=f"Version {compiled.version} is older than the published version "
            f"{latest.version}: raise `version:` in the file to {latest.version + 1}."
        )
    return result(outcome="new")


def _same_or_conflict(existing: DesignVersionInfo, digest: str) -> PublishResult:
    if existing.content_hash == digest:
        return PublishResult(existing, created=False)
    raise ConflictError(
        f"version {existing.version} of {existing.design_id} is already published with other "
        "content; raise `version:` in the file",
        hint=f"Published versions never change (learners on version {existing.version} stay on "
        f"it). Set `version: {existing.version + 1}` or higher and publish again.",
    )


def list_designs(session: Session, tenant: Tenant) -> list[DesignSummary]:
    return designs_repo.list_designs(session, tenant)


def list_versions(session: Session, tenant: Tenant, design_id: str) -> list[DesignVersionInfo]:
    versions = designs_repo.list_versions(session, tenant, design_id)
    if not versions:
        raise _unknown_design(design_id)
    return versions


def owners_of(session: Session, tenant: Tenant, design_id: str) -> list[DesignOwnerInfo]:
    return designs_repo.list_owners(session, tenant, design_id)


def add_owner(
    session: Session, tenant: Tenant, design_id: str, *, subject: str, name: str, now: datetime
) -> bool:
    """Make a platform user an owner of the tenant's design (False when they were already)."""
    if not designs_repo.design_exists(session, tenant, design_id):
        raise _unknown_design(design_id)
    return designs_repo.add_owner(
        session, tenant, design_id, subject=subject, name=name[:MAX_PUBLISHED_BY], now=now
    )


def _unknown_design(design_id: str) -> NotFoundError:
    return NotFoundError(
        f"No design {design_id!r} is published for this platform.",
        hint="Publish it with 'adaptive-lti design publish FILE.yaml --platform ID' (or from "
        "the tool's Designs page); 'adaptive-lti design list --platform ID' shows what is "
        "published. Designs of other platforms are theirs: they can export one for you "
        "('adaptive-lti design export').",
    )


# Design texts by content hash (of the YAML and its page files). A hash names one content
# whatever the database, so the cache can never hand out another version's text; it spares each
# launch the transfer of a file that may be megabytes.
_TEXTS: dict[str, tuple[str, Mapping[str, str]]] = {}


_TEXTS_LIMIT = 64


def _with_text(session: Session, tenant: Tenant, found: DesignVersionInfo) -> DesignVersionInfo:
    text = _TEXTS.get(found.content_hash)
    if text is None:
        loaded = designs_repo.version_source(session, tenant, found.design_id, found.version)
        if loaded is None:  # removed since the metadata was read
            raise _unknown_design(found.design_id)
        text = (loaded[0], MappingProxyType(loaded[1]))
        if len(_TEXTS) >= _TEXTS_LIMIT:
            _TEXTS.clear()
        _TEXTS[found.content_hash] = text
    return dataclasses.replace(found, source_text=text[0], page_bodies=text[1])


def get_design_version(
    session: Session, tenant: Tenant, design_id: str, version: int | None = None
) -> DesignVersionInfo:
    """A published version of the tenant's design (the newest when ``version`` is None), with
    its source."""
    if version is None:
        found = designs_repo.latest_version(session, tenant, design_id, with_source=False)
        if found is None:
            raise _unknown_design(design_id)
        return _with_text(session, tenant, found)
    found = designs_repo.find_version(session, tenant, design_id, version, with_source=False)
    if found is not None:
        return _with_text(session, tenant, found)
    if not designs_repo.design_exists(session, tenant, design_id):
        raise _unknown_design(design_id)
    published = ", ".join(
        str(v.version) for v in designs_repo.list_versions(session, tenant, design_id)
    )
    raise NotFoundError(
        f"Version {version} of {design_id} is not published (published: {published}).",
        hint=f"Use design={design_id} to follow the newest version, or pin a published one.",
    )


def resolve(session: Session, tenant: Tenant, reference: DesignReference) -> DesignVersionInfo:
    return get_design_version(session, tenant, reference.design_id, reference.version)


@lru_cache(maxsize=64)
def _compile(source_text: str, filename: str, pages: tuple[tuple[str, str], ...]) -> CompiledDesign:
    return _with_pages(load_design(source_text, filename), dict(pages))


def compiled_design(version: DesignVersionInfo) -> CompiledDesign:
    """The runnable design of a published version (compiled once per process: versions never
    change, so the cache cannot go stale)."""
    if not version.source_text:
        raise ValueError("compiled_design needs a version read with its source")
    return _compile(
        version.source_text,
        f"{version.design_id}@{version.version}",
        tuple(sorted(version.page_bodies.items())),
    )
