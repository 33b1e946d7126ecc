"""``grades``: grade passback from the command line.

    adaptive-lti grades deliver [--once] [--interval SECONDS]   deliver queued scores
    adaptive-lti grades status [--status failed] [--user SUB] [--limit N] [--json]
    adaptive-lti grades retry [--registration ID]              requeue failed scores

``deliver`` is the same worker the app runs in the background (turn that one off with
ADAPTIVE_LTI_GRADE_DELIVERY_WORKER=false when a separate process delivers); any number of them
may run at once, on any machines sharing the database: a score is posted by one of them only.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.cli.database import usable_database
from adaptive_lti.core.grading import DeliveryReport, OutboxEntry, OutboxStatus, RetryPolicy
from adaptive_lti.db import audit_repo
from adaptive_lti.db.audit_repo import AuditAction
from adaptive_lti.db.session import make_session_factory, transaction
from adaptive_lti.lti.ags import open_ags_client
from adaptive_lti.services import grades
from adaptive_lti.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "grades",
        help="deliver queued scores to the platforms' gradebooks and see how delivery goes",
        description="Scores are queued in the database when learners progress and delivered "
        "to the platform (LTI AGS) with retries. The app delivers them in the background; "
        "these commands do it by hand and show what is pending or failed, and why.",
    )
    commands = parser.add_subparsers(dest="grades_command", metavar="ACTION", required=True)

    deliver = commands.add_parser(
        "deliver", help="deliver due scores (until Ctrl-C, or once with --once)"
    )
    deliver.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    deliver.add_argument(
        "--interval",
        type=float,
        default=None,
        help="seconds between passes (default: ADAPTIVE_LTI_GRADE_DELIVERY_INTERVAL_SECONDS)",
    )
    deliver.set_defaults(handler=run_deliver)

    status = commands.add_parser("status", help="counts per status and the newest scores")
    status.add_argument(
        "--status", choices=[s.value for s in OutboxStatus], help="only scores with this status"
    )
    status.add_argument("--user", metavar="SUB", help="only this learner (their platform user id)")
    status.add_argument(
        "--registration", type=_registration_id, metavar="ID", help="only this platform"
    )
    status.add_argument("--limit", type=int, default=20, help="how many scores to list (20)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=run_status)

    retry = commands.add_parser(
        "retry", help="give failed scores a new set of attempts (after fixing the cause)"
    )
    retry.add_argument(
        "--registration", type=_registration_id, metavar="ID", help="only this platform"
    )
    retry.set_defaults(handler=run_retry)


@contextmanager
def _session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    with usable_database(settings) as engine:
        yield make_session_factory(engine)


def _registration_id(text: str) -> int:
    """A registration id, refused before any query when out of the database's integer range."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 0 < value < 2**31:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a registration id (see 'adaptive-lti platform list')"
        )
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _print_report(report: DeliveryReport) -> None:
    superseded = f", superseded {report.superseded}" if report.superseded else ""
    print(
        f"delivered {report.delivered}, will retry {report.retrying}, failed {report.failed}"
        + superseded,
        flush=True,
    )
    for error in report.errors:
        print(f"  {error}", flush=True)


def deliver(
    settings: Settings,
    *,
    once: bool,
    interval: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Deliver due scores: every pass until Ctrl-C, or all that are due now with ``once``."""
    policy = RetryPolicy(max_attempts=settings.grade_delivery_max_attempts)
    pause = interval if interval is not None else settings.grade_delivery_interval_seconds
    batch = 100
    with _session_factory(settings) as factory:
        client = open_ags_client(factory, transport)
        try:
            while True:
                report = grades.deliver_due_scores(
                    factory, client, _now(), policy=policy, limit=batch
                )
                if report.attempted or once:
                    _print_report(report)
                if report.attempted >= batch:
                    continue  # more may be due: no pause
                if once:
                    return 0
                time.sleep(pause)
        finally:
            client.close()


def run_deliver(args: argparse.Namespace) -> int:
    return deliver(Settings(), once=args.once, interval=args.interval)


def _entry_json(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "registration_id": entry.registration_id,
        "line_item": entry.line_item_label,
        "lineitem_url": entry.lineitem_url,
        "user_id": entry.user_id,
        "score_given": entry.score_given,
        "score_maximum": entry.score_maximum,
        "status": entry.status.value,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at.isoformat(),
        "last_error": entry.last_error,
        "created_at": entry.created_at.isoformat(),
        "delivered_at": entry.delivered_at.isoformat() if entry.delivered_at else None,
    }


def run_status(args: argparse.Namespace) -> int:
    with _session_factory(Settings()) as factory, transaction(factory) as session:
        report = grades.outbox_status(
            session,
            status=OutboxStatus(args.status) if args.status else None,
            registration_id=args.registration,
            user_id=args.user,
            limit=max(args.limit, 0),
        )
    if args.json:
        print(
            json.dumps(
                {
                    "counts": dict(report.counts),
                    "scores": [_entry_json(e) for e in report.entries],
                },
                indent=2,
            )
        )
        return 0
    counts = report.counts
    print(
        f"pending {counts.get('pending', 0)}, delivered {counts.get('delivered', 0)}, "
        f"failed {counts.get('failed', 0)}, superseded {counts.get('superseded', 0)}"
    )
    for entry in report.entries:
        score = (
            f"{entry.score_given:g}/{entry.score_maximum:g}"
            if entry.score_given is not None and entry.score_maximum is not None
            else "progress only"
        )
        when = (
            f"delivered {entry.delivered_at:%Y-%m-%d %H:%M}"
            if entry.delivered_at
            else f"next attempt {entry.next_attempt_at:%Y-%m-%d %H:%M:%S}"
            if entry.status is OutboxStatus.pending
            else f"after {entry.attempts} attempt(s)"
        )
        print(
            f"#{entry.id} {entry.status.value:<9} user {entry.user_id} {score} "
            f"'{entry.line_item_label}' ({when})"
        )
        if entry.last_error:
            print(f"    {entry.last_error}")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    with _session_factory(Settings()) as factory, transaction(factory) as session:
        count = grades.requeue_failed(session, _now(), registration_id=args.registration)
        audit_repo.append(
            session,
            audit_repo.Actor.command_line(),
            AuditAction.scores_retry,
            args.registration,
            "failed scores",
            {"requeued": count},
            now=_now(),
        )
    print(
        f"{count} failed score(s) queued again"
        + ("; the delivery worker will send them" if count else "")
    )
    return 0
