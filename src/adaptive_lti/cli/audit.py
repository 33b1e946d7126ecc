"""``audit`` and ``learners``: what administrators and instructors did, and one person's data.

    adaptive-lti audit [--platform ID] [--since WHEN] [--action ACTION]... [--json]
    adaptive-lti learners export --platform ID --user SUB
    adaptive-lti learners forget --platform ID --user SUB [--yes] [--json]

``learners export`` prints everything stored about a platform user as JSON (an access request);
``learners forget`` first says what it would delete, and deletes it only with ``--yes`` (an
erasure request). Both are written to the audit record in the transaction that does them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from adaptive_lti.cli.database import usable_database
from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.db import audit_repo
from adaptive_lti.db.audit_repo import Actor, AuditAction
from adaptive_lti.db.session import make_session_factory, transaction
from adaptive_lti.services import privacy
from adaptive_lti.settings import Settings

_DURATION = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_SUBJECT = 255


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="list what administrators and instructors did (the audit record)",
        description="The audit record: every administrative and instructor action, with who, "
        "when, on which platform, what and to what. Oldest first.",
    )
    audit.add_argument(
        "--platform",
        metavar="ID",
        default="all",
        help="one platform registration's actions (default: all, tool-wide ones included)",
    )
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help="only actions since WHEN: a date or time in ISO 8601 (UTC unless it says), "
        "or a duration back from now such as 30m, 12h, 7d, 2w",
    )
    audit.add_argument(
        "--action",
        action="append",
        default=[],
        metavar="ACTION",
        help="only this action (repeatable; e.g. learner.move, key.rotate)",
    )
    audit.add_argument("--json", action="store_true", help="print the records as JSON")
    audit.set_defaults(handler=run_audit)

    learners = subparsers.add_parser(
        "learners",
        help="one platform user's data: export it (access request) or erase it",
        description="A person is named by the platform registration and their platform user "
        "id (the 'sub' of their launches; in Moodle, their user id).",
    )
    commands = learners.add_subparsers(dest="learners_command", metavar="ACTION", required=True)
    export = commands.add_parser("export", help="print everything stored about a user, as JSON")
    forget = commands.add_parser(
        "forget", help="erase everything stored about a user (says what first; needs --yes)"
    )
    for command in (export, forget):
        command.add_argument(
            "--platform", metavar="ID", required=True, help="the registration's id"
        )
        command.add_argument(
            "--user", metavar="SUB", required=True, help="the user's platform id (sub)"
        )
    export.set_defaults(handler=run_export)
    forget.add_argument("--yes", action="store_true", help="delete it (without: only report)")
    forget.add_argument("--json", action="store_true", help="print the report as JSON")
    forget.set_defaults(handler=run_forget)


@contextmanager
def _database() -> Iterator[Session]:
    settings = Settings()
    with usable_database(settings) as engine, transaction(make_session_factory(engine)) as session:
        yield session


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 date or time (UTC when it has no offset) or a duration ago."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        amount, unit = duration.groups()
        try:
            return now - timedelta(**{_UNITS[unit]: int(amount)})
        except OverflowError:
            raise InvalidInputError(f"--since {text!r} reaches back too far.") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"--since {text!r} is neither a date or time (2026-12-01, 2026-12-01T09:30) nor "
            "a duration (30m, 12h, 7d, 2w)."
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _tenant(text: str) -> audit_repo.Tenant:
    if text.strip().lower() == audit_repo.ALL_TENANTS:
        return audit_repo.ALL_TENANTS
    return _registration_id(text)


def _registration_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value < 2**31:
        raise InvalidInputError(
            f"--platform {text!r} is not a registration id.",
            hint="Give a number from 'adaptive-lti platform list' ('all' for the audit record).",
        )
    return value


def _actions(names: list[str]) -> tuple[str, ...]:
    known = {action.value for action in AuditAction}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidInputError(
            f"--action {unknown[0]!r} is not an action the audit record knows.",
            hint="Use one of: " + ", ".join(sorted(known)) + ".",
        )
    return tuple(names)


def _subject(text: str) -> str:
    if not text.strip() or len(text) > MAX_SUBJECT:
        raise InvalidInputError(
            f"--user must be a platform user id of 1 to {MAX_SUBJECT} characters.",
            hint="Give the 'sub' of the user's launches (in Moodle, their user id).",
        )
    return text


def run_audit(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    tenant = _tenant(args.platform)
    since = parse_since(args.since, now) if args.since else None
    actions = _actions(args.action)
    with _database() as session:
        entries = audit_repo.list_entries(session, tenant, since=since, actions=actions)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print("no audit records match")
        return 0
    print(f"{'WHEN (UTC)':<20} {'PLATFORM':>8}  {'WHO':<28} {'ACTION':<22} TARGET  DETAILS")
    for entry in entries:
        who = entry.actor.name + (f" ({entry.actor.subject})" if entry.actor.subject else "")
        platform = "-" if entry.registration_id is None else str(entry.registration_id)
        details = json.dumps(entry.details, ensure_ascii=False, sort_keys=True)
        print(
            f"{entry.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} {platform:>8}  {who:<28} "
            f"{entry.action:<22} {entry.target}  {details}"
        )
    return 0


def run_export(args: argparse.Namespace) -> int:
    platform, subject = _registration_id(args.platform), _subject(args.user)
    with _database() as session:
        exported = privacy.export_learner(
            session, platform, subject, Actor.command_line(), now=datetime.now(UTC)
        )
    print(json.dumps(exported, indent=2, ensure_ascii=False, sort_keys=True))
    return 0


_WORDS = {
    "users": ("user row", "user rows"),
    "launches": ("launch", "launches"),
    "enrolments": ("enrolment", "enrolments"),
    "events": ("event", "events"),
    "snapshots": ("snapshot", "snapshots"),
    "scores": ("score", "scores"),
    "roster_rows": ("roster row", "roster rows"),
}


def _report(plan: privacy.ForgetPlan, *, done: bool) -> str:
    lines = []
    if plan.undelivered_scores:
        lines.append(
            f"{len(plan.undelivered_scores)} score(s) not yet delivered to the platform "
            + ("were" if done else "will be")
            + " deleted and will never reach its gradebook:"
        )
        for score in plan.undelivered_scores:
            lines.append(
                f"  score {score['id']} on {score['line_item']!r}: {score['score_given']} of "
                f"{score['score_maximum']} ({score['status']}, queued {score['created_at']})"
            )
    counted = ", ".join(
        f"{count} {_WORDS[table][0 if count == 1 else 1]}" for table, count in plan.counts.items()
    )
    verb = "deleted" if done else "would delete"
    lines.append(f"{verb} for user {plan.subject} of platform {plan.registration_id}: {counted}")
    return "\n".join(lines)


def _plan_json(plan: privacy.ForgetPlan, *, done: bool) -> dict[str, Any]:
    return {
        "registration_id": plan.registration_id,
        "user_sub": plan.subject,
        "deleted": done,
        "counts": plan.counts,
        "undelivered_scores": list(plan.undelivered_scores),
    }


def run_forget(args: argparse.Namespace) -> int:
    platform, subject = _registration_id(args.platform), _subject(args.user)
    with _database() as session:
        if args.yes:
            plan = privacy.forget_learner(
                session, platform, subject, Actor.command_line(), now=datetime.now(UTC)
            )
        else:
            plan = privacy.forget_plan(session, platform, subject)
    if args.json:
        print(json.dumps(_plan_json(plan, done=args.yes), indent=2, ensure_ascii=False))
    else:
        print(_report(plan, done=args.yes))
    if not args.yes:
        print(
            "error: nothing was deleted: run the command again with --yes to erase it.",
            file=sys.stderr,
        )
        return 1
    return 0
