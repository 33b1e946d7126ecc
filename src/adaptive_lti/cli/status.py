"""``status``: the tool at a glance, for an administrator.

    adaptive-lti status [--json]

Registrations (active, awaiting approval) and their deployments, the score outbox (pending,
failed, the oldest pending), and the logins and launches refused in the last 24 hours and 7 days
by the check that failed, with the last message of each.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from adaptive_lti.cli.database import usable_database
from adaptive_lti.db import operations_repo
from adaptive_lti.db.session import make_session_factory
from adaptive_lti.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="registrations, the score outbox and recent launch refusals at a glance",
        description="Summarises the tool's database: platform registrations and deployments, "
        "scores waiting for delivery or failed, and the logins and launches refused in the "
        "last 24 hours and 7 days, by the check that failed.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_status)


def gather(settings: Settings, now: datetime) -> dict[str, Any]:
    with usable_database(settings) as engine, make_session_factory(engine)() as session:
        registrations = operations_repo.registrations_summary(session)
        backlog = operations_repo.outbox_backlog(session)
        day = operations_repo.recent_refusals(session, now - timedelta(hours=24))
        week = operations_repo.recent_refusals(session, now - operations_repo.REFUSAL_RETENTION)
    return {
        "registrations": {
            "active": registrations.active,
            "awaiting_approval": registrations.awaiting_approval,
        },
        "deployments": {
            "active": registrations.deployments_active,
            "inactive": registrations.deployments_inactive,
        },
        "outbox": {
            "pending": backlog.pending,
            "failed": backlog.failed,
            "oldest_pending_at": None
            if backlog.oldest_pending_at is None
            else backlog.oldest_pending_at.isoformat(),
            "oldest_pending_age_seconds": round(backlog.oldest_pending_age_seconds(now), 1),
        },
        "refusals": {
            "last_24_hours": sum(item.count for item in day),
            "last_7_days": sum(item.count for item in week),
            "by_check": [{**asdict(item), "last_at": item.last_at.isoformat()} for item in week],
        },
    }


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def render(summary: dict[str, Any]) -> str:
    registrations, deployments = summary["registrations"], summary["deployments"]
    outbox, refusals = summary["outbox"], summary["refusals"]
    lines = [
        f"registrations: {registrations['active']} active, "
        f"{registrations['awaiting_approval']} awaiting approval"
        + (
            " ('adaptive-lti platform list' shows them)"
            if registrations["awaiting_approval"]
            else ""
        ),
        f"deployments: {deployments['active']} active, {deployments['inactive']} inactive",
        f"score outbox: {outbox['pending']} pending, {outbox['failed']} failed"
        + (
            f", oldest pending queued {_age(outbox['oldest_pending_age_seconds'])} ago"
            if outbox["oldest_pending_at"]
            else ""
        )
        + (" ('adaptive-lti grades status --status failed' says why)" if outbox["failed"] else ""),
        f"refused logins and launches: {refusals['last_24_hours']} in the last 24 hours, "
        f"{refusals['last_7_days']} in the last 7 days",
    ]
    for item in refusals["by_check"]:
        lines.append(
            f"  {item['count']:>6}  {item['step']}: {item['check']}  "
            f"(last {item['last_at']}: {item['last_message']})"
        )
    return "\n".join(lines)


def run_status(args: argparse.Namespace) -> int:
    summary = gather(Settings(), datetime.now(UTC))
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 0
