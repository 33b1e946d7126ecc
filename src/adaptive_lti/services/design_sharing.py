"""Sharing designs between tenants: a design's versions exported into a package, and a package
imported into another tenant (under the design's own id or a new one, never adding versions to a
design already there), each version published as if it had been uploaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import (
    DesignVersionInfo,
    Publisher,
    PublishResult,
    Tenant,
    parse_design_reference,
)
from adaptive_lti.core.errors import ConflictError, DesignError, Problem
from adaptive_lti.core.loader import load_design
from adaptive_lti.db import designs_repo
from adaptive_lti.services.design_publishing import (
    get_design_version,
    list_versions,
    publish_design,
)


def export_design(
    session: Session, tenant: Tenant, design_id: str, version: int | None = None
) -> list[DesignVersionInfo]:
    """The versions of the tenant's design to put in a package (all, oldest first, or one),
    each with its source and page files."""
    if version is not None:
        return [get_design_version(session, tenant, design_id, version)]
    numbers = sorted(v.version for v in list_versions(session, tenant, design_id))
    return [get_design_version(session, tenant, design_id, number) for number in numbers]


_DESIGN_LINE = re.compile(r"^design:[ \t]*(?P<value>[^\n#]*?)[ \t]*(?P<comment>#[^\n]*)?$", re.M)


def rename_design(source_text: str, filename: str, old_id: str, new_id: str) -> str:
    """The design's source with its top-level ``design:`` id changed from ``old_id``."""
    parse_design_reference(new_id)  # refuses what is not a design id, in its words
    for found in _DESIGN_LINE.finditer(source_text):
        if found["value"].strip("'\"") == old_id:
            comment = f" {found['comment']}" if found["comment"] else ""
            renamed = (
                source_text[: found.start()]
                + f"design: {new_id}{comment}"
                + source_text[found.end() :]
            )
            if load_design(renamed, filename).id == new_id:
                return renamed
    raise DesignError(
        [
            Problem(
                f"cannot give the design a new id: no top-level line 'design: {old_id}' found",
                filename,
                hint="Change the id in the file yourself and publish it with 'adaptive-lti "
                "design publish FILE --platform ID'.",
                code="rename-failed",
            )
        ]
    )


def import_design(
    session: Session,
    tenant: Tenant,
    versions: list[tuple[str, str, Mapping[str, str]]],
    publisher: Publisher,
    *,
    now: datetime,
    new_id: str | None = None,
) -> list[PublishResult]:
    """Publish a package's versions ((filename, source, page bodies), oldest first) into the
    tenant, as ``new_id`` when given. Refused (``ConflictError``) when the tenant already has a
    design of that id: an import never adds versions to a design that is there."""
    if not versions:
        raise DesignError([Problem("the package holds no design version", "package")])
    first_name, first_source, _ = versions[0]
    old_id = load_design(first_source, first_name).id
    target = new_id or old_id
    if designs_repo.design_exists(session, tenant, target):
        raise ConflictError(
            f"This platform already has a design {target!r}; the package was not imported.",
            hint="Import it under another id with '--as NEW_ID', or look at the one there with "
            f"'adaptive-lti design show {target} --platform ID'.",
        )
    results = []
    for filename, source, bodies in versions:
        if load_design(source, filename).id != old_id:
            raise DesignError(
                [Problem(f"the package mixes designs: {filename} is not {old_id}", filename)]
            )
        text = rename_design(source, filename, old_id, target) if target != old_id else source
        results.append(
            publish_design(session, tenant, text, filename, publisher, now=now, page_bodies=bodies)
        )
    return results
