"""``design publish|list|show|export|import``: the designs published into the tool's database.

Designs belong to one platform registration (a tenant): every command names it with
``--platform ID``, the registration's id as 'adaptive-lti platform list' shows it. Sharing a
design with another platform is an export from one and an import into the other.

``publish`` loads and lints the file first (as ``check`` does) and refuses it on errors; warnings
are printed and kept with the version. Publishing the identical file again is a no-op (exit 0);
the same ``version:`` with other content is refused (exit 1). ``--json`` prints a machine-readable
answer for scripts and CI.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from adaptive_lti.cli import design_package
from adaptive_lti.cli.database import usable_database
from adaptive_lti.core.catalogue import DesignVersionInfo, Publisher, Tenant
from adaptive_lti.core.errors import DesignError, InvalidInputError
from adaptive_lti.core.loader import load_design_file
from adaptive_lti.db import audit_repo, registrations_repo
from adaptive_lti.db.session import make_session_factory, transaction
from adaptive_lti.services import design_bindings, design_publishing, design_sharing
from adaptive_lti.settings import Settings


def register(subparsers: Any) -> None:
    design = subparsers.add_parser(
        "design",
        help="publish designs into the tool and list them",
        description="Manage the designs published in the tool's database "
        "(check a file without publishing it with 'adaptive-lti check').",
    )
    commands = design.add_subparsers(dest="design_command", metavar="ACTION", required=True)

    publish = commands.add_parser(
        "publish",
        help="load, lint and publish a design file (refused on lint errors)",
        description="Publish a design version. Published versions never change: to change a "
        "design, raise its 'version:' and publish again.",
    )
    publish.add_argument("file", help="the design file (YAML)")
    _platform_option(publish, "to publish into")
    publish.add_argument(
        "--by", help="who publishes, as recorded with the version (default: your login name)"
    )
    publish.add_argument("--json", action="store_true", help="print the result as JSON")
    publish.set_defaults(handler=run_publish)

    listing = commands.add_parser("list", help="list the published designs of a platform")
    _platform_option(listing, "whose designs to list")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="show one design: its versions and activities")
    show.add_argument("design_id", metavar="ID", help="the design's id")
    _platform_option(show, "whose design it is")
    show.add_argument("--version", type=int, help="the version to show (default: the newest)")
    show.add_argument("--source", action="store_true", help="print the version's YAML source")
    show.add_argument("--json", action="store_true", help="print the design as JSON")
    show.set_defaults(handler=run_show)

    export = commands.add_parser(
        "export",
        help="write a design package (a zip file) to share a design with another platform",
        description="Write one platform's design as a self-contained package: a zip file "
        "holding manifest.json and, per version N, vN/design.yaml (as published) with the "
        "Markdown of its page files in vN/pages/. Import it into another platform with "
        "'adaptive-lti design import FILE --platform ID'.",
    )
    export.add_argument("design_id", metavar="ID", help="the design's id")
    _platform_option(export, "whose design it is")
    export.add_argument(
        "-o", "--output", required=True, type=Path, help="the package file to write (.zip)"
    )
    export.add_argument("--version", type=int, help="export only this version (default: all)")
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    export.set_defaults(handler=run_export)

    imported = commands.add_parser(
        "import",
        help="publish a design package into a platform",
        description="Publish the versions of a package 'design export' wrote into one "
        "platform. Refused when that platform has a design of the same id already: use --as "
        "to import it under a new id.",
    )
    imported.add_argument("file", type=Path, help="the package (.zip)")
    _platform_option(imported, "to import into")
    imported.add_argument("--as", dest="new_id", metavar="NEW_ID", help="import under this id")
    imported.add_argument(
        "--by", help="who publishes, as recorded with the versions (default: your login name)"
    )
    imported.add_argument("--json", action="store_true", help="print the result as JSON")
    imported.set_defaults(handler=run_import)


def _platform_option(parser: Any, what: str) -> None:
    parser.add_argument(
        "--platform",
        metavar="ID",
        type=int,
        help=f"the platform registration {what}: its id in 'adaptive-lti platform list' "
        "(designs belong to one platform)",
    )


def _tenant(session: Session, platform: int | None) -> Tenant:
    """The tenant ``--platform`` names; refused, listing the registrations, when it is absent."""
    if platform is None:
        registrations = registrations_repo.list_registrations(session)
        known = "; ".join(f"{r.id}: {r.name or r.issuer} ({r.issuer})" for r in registrations)
        raise InvalidInputError(
            "Designs belong to one platform: say which with --platform ID.",
            hint=f"Registered platforms: {known}."
            if registrations
            else "No platform is registered yet: add one with 'adaptive-lti platform add'.",
        )
    return Tenant(registrations_repo.get_registration(session, platform).id)


@contextmanager
def _database() -> Iterator[Session]:
    settings = Settings()
    with usable_database(settings) as engine, transaction(make_session_factory(engine)) as session:
        audit_repo.act_as(session, audit_repo.Actor.command_line())
        yield session


def _version_json(version: DesignVersionInfo) -> dict[str, Any]:
    return {
        "design": version.design_id,
        "version": version.version,
        "title": version.title,
        "content_hash": version.content_hash,
        "sends_grade": version.sends_grade,
        "published_at": version.published_at.isoformat(),
        "published_by": version.published_by,
        "lint": {
            "errors": version.lint.errors,
            "warnings": version.lint.warnings,
            "messages": list(version.lint.messages),
        },
    }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _lint_words(version: DesignVersionInfo) -> str:
    return f"{_plural(version.lint.errors, 'error')}, {_plural(version.lint.warnings, 'warning')}"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _default_publisher() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "command line"


def run_publish(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        # Reads page files beside the design too, so the stored version is self-contained.
        compiled = load_design_file(path)
        source_text = path.read_bytes().decode("utf-8-sig")
        with _database() as session:
            result = design_publishing.publish_design(
                session,
                _tenant(session, args.platform),
                source_text,
                str(path),
                Publisher(args.by or _default_publisher(), command_line=True),
                now=datetime.now(UTC),
                page_bodies=design_publishing.page_bodies_of(compiled),
            )
    except DesignError as error:
        if args.json:
            _print_json({"published": False, "problems": [str(p) for p in error.problems]})
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(
            f"error: {path} was not published: fix the problems above "
            "('adaptive-lti check FILE' shows them without publishing).",
            file=sys.stderr,
        )
        return 1
    version = result.version
    if args.json:
        _print_json({"published": True, "created": result.created, **_version_json(version)})
        return 0
    for message in version.lint.messages:
        print(message)
    if result.created:
        print(
            f"published {version.design_id} version {version.version} (“{version.title}”): "
            f"{_plural(version.lint.warnings, 'warning')}"
        )
    else:
        print(
            f"{version.design_id} version {version.version} is already published with this "
            "content: nothing changed"
        )
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _database() as session:
        summaries = design_publishing.list_designs(session, _tenant(session, args.platform))
    if args.json:
        _print_json(
            [
                {"versions": summary.version_count, **_version_json(summary.latest)}
                for summary in summaries
            ]
        )
        return 0
    if not summaries:
        print(
            "No design is published for this platform yet: publish one with "
            f"'adaptive-lti design publish FILE --platform {args.platform}'."
        )
        return 0
    rows = [("ID", "VERSION", "TITLE", "LINT", "PUBLISHED")]
    for summary in summaries:
        latest = summary.latest
        rows.append(
            (
                summary.design_id,
                f"{summary.latest_version} (of {summary.version_count})",
                summary.title,
                _lint_words(latest),
                f"{latest.published_at:%Y-%m-%d %H:%M} by {latest.published_by}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    with _database() as session:
        tenant = _tenant(session, args.platform)
        version = design_publishing.get_design_version(
            session, tenant, args.design_id, args.version
        )
        versions = design_publishing.list_versions(session, tenant, args.design_id)
        bindings = design_bindings.bindings_of(session, tenant, args.design_id)
        owners = design_publishing.owners_of(session, tenant, args.design_id)
    compiled = design_publishing.compiled_design(version)
    activities = {
        activity_id: activity.kind for activity_id, activity in compiled.design.activities.items()
    }
    if args.json:
        answer = {
            **_version_json(version),
            "versions": [v.version for v in versions],
            "owners": [{"subject": o.subject, "name": o.name} for o in owners],
            "activities": activities,
            "bindings": [
                {
                    "registration_id": b.registration_id,
                    "resource_link_id": b.resource_link_id,
                    "context_id": b.context_id,
                    "pinned_version": b.pinned_version,
                    "method": b.method.value,
                    "bound_by": b.bound_by,
                    "bound_at": b.bound_at.isoformat(),
                }
                for b in bindings
            ],
        }
        if args.source:
            answer["source"] = version.source_text
        _print_json(answer)
        return 0
    print(f"{version.design_id} version {version.version}: {version.title}")
    print(f"  published {version.published_at:%Y-%m-%d %H:%M} UTC by {version.published_by}")
    print(f"  versions: {', '.join(str(v.version) for v in versions)}")
    named = ", ".join(f"{o.name} (user {o.subject})" for o in owners)
    print(f"  owners (publish new versions, with the administrators): {named or 'none'}")
    print(f"  sends a grade: {'yes' if version.sends_grade else 'no'}")
    print(f"  lint: {_lint_words(version)}")
    for message in version.lint.messages:
        print(f"    {message}")
    print(f"  activities ({len(activities)}):")
    for activity_id, kind in activities.items():
        print(f"    {activity_id} ({kind})")
    print(f"  activities in courses bound to it: {len(bindings)}")
    for binding in bindings:
        pinned = f"version {binding.pinned_version}" if binding.pinned_version else "newest"
        print(
            f"    registration {binding.registration_id}, course {binding.context_id or '-'}, "
            f"resource link {binding.resource_link_id}: {pinned}, by {binding.method.value} "
            f"({binding.bound_by})"
        )
    if args.source:
        print()
        print(version.source_text, end="" if version.source_text.endswith("\n") else "\n")
    return 0


def run_export(args: argparse.Namespace) -> int:
    with _database() as session:
        tenant = _tenant(session, args.platform)
        versions = design_sharing.export_design(session, tenant, args.design_id, args.version)
    try:
        design_package.write_package(args.output, versions)
    except OSError as error:
        raise InvalidInputError(
            f"Cannot write {args.output}: {error.strerror or error}.",
            hint="Check that the folder exists and that you may write there.",
        ) from None
    numbers = [v.version for v in versions]
    if args.json:
        _print_json({"exported": args.design_id, "versions": numbers, "file": str(args.output)})
        return 0
    print(
        f"exported {args.design_id} ({_plural(len(numbers), 'version')}: "
        f"{', '.join(map(str, numbers))}) to {args.output}"
    )
    return 0


def run_import(args: argparse.Namespace) -> int:
    versions = design_package.read_package(args.file)
    try:
        with _database() as session:
            results = design_sharing.import_design(
                session,
                _tenant(session, args.platform),
                versions,
                Publisher(args.by or _default_publisher(), command_line=True),
                now=datetime.now(UTC),
                new_id=args.new_id,
            )
    except DesignError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"error: {args.file} was not imported: nothing was published.", file=sys.stderr)
        return 1
    design_id = results[0].version.design_id
    numbers = [result.version.version for result in results]
    if args.json:
        _print_json({"imported": design_id, "platform": args.platform, "versions": numbers})
        return 0
    print(
        f"imported {design_id} into platform {args.platform} "
        f"({_plural(len(numbers), 'version')}: {', '.join(map(str, numbers))})"
    )
    return 0
