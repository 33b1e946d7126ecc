"""``platform`` and ``keys``: the administrator's commands for registrations and tool keys.

    adaptive-lti platform add --moodle https://moodle.example.edu --client-id ID [--deployment 1]
    adaptive-lti platform add --issuer ISS --client-id ID --auth-login-url URL
                              --auth-token-url URL (--jwks-url URL | --jwks-file FILE)
    adaptive-lti platform update ID [--client-id ID] [--auth-login-url URL] [--token-url URL]
                          [--token-audience AUD] [--jwks-url URL | --jwks-file FILE] [--name N]
    adaptive-lti platform list | show ID | remove ID [--yes] | approve ID
    adaptive-lti platform activate-deployment ID DEPLOYMENT | deactivate-deployment ID DEPLOYMENT
                          | remove-deployment ID DEPLOYMENT
    adaptive-lti keys list | rotate | retire KID

Every command takes ``--json`` for scripts. Errors (a duplicate registration, an unknown id)
exit 1 with a message saying what to do. Private keys are never printed. Every change is written
to the audit record (``adaptive-lti audit``) as ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from adaptive_lti.cli.database import usable_database
from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.lti import DeploymentInfo, PlatformRegistrationInfo, RegistrationStatus
from adaptive_lti.db import audit_repo, registrations_repo
from adaptive_lti.db.audit_repo import AuditAction
from adaptive_lti.db.session import make_session_factory, transaction
from adaptive_lti.lti import keys
from adaptive_lti.settings import Environment, Settings


def register(subparsers: Any) -> None:
    _register_platform(subparsers)
    _register_keys(subparsers)


def _register_platform(subparsers: Any) -> None:
    platform = subparsers.add_parser(
        "platform",
        help="register LTI platforms (Moodle, ...) and manage their deployments",
        description="Platform registrations are keyed by (issuer, client id); launches from a "
        "deployment are accepted once the deployment is active.",
    )
    commands = platform.add_subparsers(dest="platform_command", metavar="ACTION", required=True)

    add = commands.add_parser(
        "add",
        help="register a platform",
        description="Register a platform. For Moodle, --moodle SITE fills in the issuer and the "
        "endpoints (mod/lti/auth.php, token.php, certs.php) from the site's root URL.",
    )
    add.add_argument("--moodle", metavar="SITE_URL", help="a Moodle site's root URL")
    add.add_argument("--issuer", help="the platform's issuer (iss), exactly as it sends it")
    add.add_argument("--client-id", required=True, help="the client id the platform gave the tool")
    add.add_argument("--auth-login-url", help="the platform's OIDC authentication URL")
    add.add_argument("--auth-token-url", help="the platform's OAuth 2 token URL")
    add.add_argument("--token-audience", help="the token audience, when not the token URL")
    add.add_argument("--jwks-url", help="the platform's public key set URL")
    add.add_argument("--jwks-file", type=Path, help="a static JWKS file instead of a URL")
    add.add_argument("--name", default="", help="a name for people (default: the issuer's host)")
    add.add_argument(
        "--deployment",
        action="append",
        default=[],
        metavar="DEPLOYMENT_ID",
        help="an active deployment id (repeatable; Moodle's is the tool type id, e.g. 1)",
    )
    add.add_argument(
        "--awaiting-approval",
        action="store_true",
        help="register it as waiting for approval ('platform approve ID' activates it)",
    )
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(handler=run_platform_add)

    listing = commands.add_parser("list", help="list the registrations")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=run_platform_list)

    show = commands.add_parser("show", help="show one registration and its deployments")
    show.add_argument("registration_id", metavar="ID", type=int, help="the registration's id")
    show.add_argument("--json", action="store_true", help="print it as JSON")
    show.set_defaults(handler=run_platform_show)

    update = commands.add_parser(
        "update",
        help="change a registration's client id, endpoints or name in place",
        description="Change what the tool knows of a platform without removing it (and "
        "everything recorded under it). Only the options given change.",
    )
    update.add_argument("registration_id", metavar="ID", type=int, help="the registration's id")
    update.add_argument("--client-id", help="the client id the platform gave the tool")
    update.add_argument("--auth-login-url", help="the platform's OIDC authentication URL")
    update.add_argument(
        "--token-url", "--auth-token-url", dest="auth_token_url", help="the OAuth 2 token URL"
    )
    update.add_argument(
        "--token-audience", help="the token audience, when not the token URL ('' clears it)"
    )
    update.add_argument("--jwks-url", help="the platform's public key set URL")
    update.add_argument(
        "--jwks-file", type=Path, help="a static JWKS file (replaces the key set or JWKS URL)"
    )
    update.add_argument("--name", help="a name for people")
    update.add_argument("--json", action="store_true", help="print the result as JSON")
    update.set_defaults(handler=run_platform_update)

    remove = commands.add_parser(
        "remove",
        help="remove a registration and everything recorded under it",
        description="Without --yes, says what would be deleted (users, launches, enrolments, "
        "design bindings, queued scores...) and deletes nothing.",
    )
    remove.add_argument("registration_id", metavar="ID", type=int, help="the registration's id")
    remove.add_argument(
        "--yes", action="store_true", help="really delete the registration and its records"
    )
    remove.add_argument("--json", action="store_true", help="print the result as JSON")
    remove.set_defaults(handler=run_platform_remove)

    approve = commands.add_parser("approve", help="approve a registration awaiting approval")
    approve.add_argument("registration_id", metavar="ID", type=int, help="the registration's id")
    approve.add_argument("--json", action="store_true", help="print the result as JSON")
    approve.set_defaults(handler=run_platform_approve)

    for action, text, handler in (
        ("activate-deployment", "activate (or add) a deployment", run_activate_deployment),
        ("deactivate-deployment", "stop accepting launches from a deployment", run_deactivate),
        ("remove-deployment", "forget a deployment and its launches", run_remove_deployment),
    ):
        command = commands.add_parser(action, help=text)
        command.add_argument(
            "registration_id", metavar="ID", type=int, help="the registration's id"
        )
        command.add_argument("deployment_id", metavar="DEPLOYMENT_ID", help="the deployment id")
        command.add_argument("--json", action="store_true", help="print the result as JSON")
        command.set_defaults(handler=handler)


def _register_keys(subparsers: Any) -> None:
    key_parser = subparsers.add_parser(
        "keys",
        help="the tool's signing keys (published at /.well-known/jwks.json)",
        description="Rotate: make a new signing key; the old one stays published until retired.",
    )
    commands = key_parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    listing = commands.add_parser("list", help="list the keys (never their private part)")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=run_keys_list)
    rotate = commands.add_parser("rotate", help="make a new signing key")
    rotate.add_argument("--json", action="store_true", help="print the new key as JSON")
    rotate.set_defaults(handler=run_keys_rotate)
    retire = commands.add_parser("retire", help="stop publishing and using a key")
    retire.add_argument("kid", metavar="KID", help="the key's id (see 'keys list')")
    retire.add_argument("--json", action="store_true", help="print the result as JSON")
    retire.set_defaults(handler=run_keys_retire)


@contextmanager
def _database() -> Iterator[tuple[Session, Settings]]:
    settings = Settings()
    with usable_database(settings) as engine, transaction(make_session_factory(engine)) as session:
        audit_repo.act_as(session, audit_repo.Actor.command_line())
        yield session, settings


def _audit(
    session: Session,
    action: AuditAction,
    registration_id: int | None,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Record the command's action in the audit record, in the command's transaction (it
    commits with the action, or not at all)."""
    actor = audit_repo.acting(session, "cli")
    audit_repo.append(session, actor, action, registration_id, target, details, now=_now())


def _now() -> datetime:
    return datetime.now(UTC)


def _print(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False) if args.json else text)


def _registration_json(
    info: PlatformRegistrationInfo, deployments: list[DeploymentInfo] | None = None
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "issuer": info.issuer,
        "client_id": info.client_id,
        "status": info.status.value,
        "auth_login_url": info.auth_login_url,
        "auth_token_url": info.auth_token_url,
        "auth_token_audience": info.auth_token_audience,
        "jwks_url": info.jwks_url,
        "static_key_set": info.static_jwks is not None,
        "created_at": info.created_at.isoformat(),
    }
    if deployments is not None:
        value["deployments"] = [_deployment_json(d) for d in deployments]
    return value


def _deployment_json(deployment: DeploymentInfo) -> dict[str, Any]:
    return {
        "deployment_id": deployment.deployment_id,
        "active": deployment.active,
        "created_at": deployment.created_at.isoformat(),
    }


def _require_url(value: str | None, option: str, settings: Settings) -> str:
    if not value:
        raise InvalidInputError(
            f"{option} is required (or give --moodle SITE_URL to fill in Moodle's endpoints)."
        )
    return _check_url(value, option, settings)


def _check_url(value: str, option: str, settings: Settings) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise InvalidInputError(f"{option} must be an http(s) URL, not {value!r}.")
    if parts.scheme == "http" and settings.environment is Environment.production:
        # Keys, tokens and grades travel over these URLs: in production, never in clear.
        raise InvalidInputError(
            f"{option} is {value!r}, a plain http:// URL; in production every platform URL "
            "must be https://.",
            hint="Give the platform's https:// address (Moodle: its wwwroot in config.php must "
            "be https). Only a test set-up (ADAPTIVE_LTI_ENVIRONMENT=development) accepts http.",
        )
    return value


def _static_key_set(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInputError(f"Cannot read {path}: {error.strerror}.") from None
    except ValueError:
        raise InvalidInputError(f"{path} is not JSON; it must hold a JWKS.") from None
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise InvalidInputError(f'{path} is not a JWKS (an object with a "keys" list).')
    return value


def run_platform_add(args: argparse.Namespace) -> int:
    issuer, auth_login_url, auth_token_url, jwks_url = (
        args.issuer,
        args.auth_login_url,
        args.auth_token_url,
        args.jwks_url,
    )
    settings = Settings()
    if args.moodle:
        site = _require_url(args.moodle, "--moodle", settings).rstrip("/")
        # Moodle's issuer is its root URL; endpoints from <site>/mod/lti/openid-configuration.php.
        issuer = issuer or site
        auth_login_url = auth_login_url or f"{site}/mod/lti/auth.php"
        auth_token_url = auth_token_url or f"{site}/mod/lti/token.php"
        if not args.jwks_file:
            jwks_url = jwks_url or f"{site}/mod/lti/certs.php"
    if not issuer:
        raise InvalidInputError("--issuer is required (or --moodle SITE_URL).")
    if issuer.startswith("http:"):
        _check_url(issuer, "--issuer", settings)
    if args.jwks_url and args.jwks_file:
        raise InvalidInputError("Give --jwks-url or --jwks-file, not both.")
    static = _static_key_set(args.jwks_file) if args.jwks_file else None
    if static is None:
        jwks_url = _require_url(jwks_url, "--jwks-url", settings)
    with _database() as (session, _settings):
        info = registrations_repo.add_registration(
            session,
            issuer=issuer,
            client_id=args.client_id,
            auth_login_url=_require_url(auth_login_url, "--auth-login-url", settings),
            auth_token_url=_require_url(auth_token_url, "--auth-token-url", settings),
            auth_token_audience=args.token_audience,
            jwks_url=None if static else jwks_url,
            static_jwks=static,
            name=args.name or urlsplit(issuer).netloc or issuer,
            status=RegistrationStatus.awaiting_approval
            if args.awaiting_approval
            else RegistrationStatus.active,
            deployment_ids=args.deployment,
            now=_now(),
        )
        deployments = registrations_repo.list_deployments(session, info.id)
        _audit(
            session,
            AuditAction.registration_add,
            info.id,
            f"registration {info.id}",
            {
                "issuer": info.issuer,
                "client_id": info.client_id,
                "status": info.status.value,
                "deployments": [d.deployment_id for d in deployments],
            },
        )
    text = f"registered platform {info.id}: {info.issuer} (client id {info.client_id})"
    if deployments:
        text += "; deployments: " + ", ".join(d.deployment_id for d in deployments)
    else:
        text += (
            f"\nno deployment yet: add one with 'adaptive-lti platform activate-deployment "
            f"{info.id} DEPLOYMENT_ID' (Moodle's is the tool type id, e.g. 1)"
        )
    _print(args, _registration_json(info, deployments), text)
    return 0


def run_platform_list(args: argparse.Namespace) -> int:
    with _database() as (session, _settings):
        found = [
            (info, registrations_repo.list_deployments(session, info.id))
            for info in registrations_repo.list_registrations(session)
        ]
    if not found:
        text = "no platform registered yet: add one with 'adaptive-lti platform add'"
    else:
        lines = [f"{'ID':>4}  {'STATUS':<18} {'ISSUER':<40} {'CLIENT ID':<24} DEPLOYMENTS"]
        for info, deployments in found:
            listed = ", ".join(
                d.deployment_id + ("" if d.active else " (inactive)") for d in deployments
            )
            lines.append(
                f"{info.id:>4}  {info.status.value:<18} {info.issuer:<40} {info.client_id:<24} "
                f"{listed or '-'}"
            )
        text = "\n".join(lines)
    _print(args, [_registration_json(info, deps) for info, deps in found], text)
    return 0


def run_platform_show(args: argparse.Namespace) -> int:
    with _database() as (session, _settings):
        info = registrations_repo.get_registration(session, args.registration_id)
        deployments = registrations_repo.list_deployments(session, info.id)
    value = _registration_json(info, deployments)
    lines = [f"{key}: {item}" for key, item in value.items() if key != "deployments"]
    lines.append("deployments:" if deployments else "deployments: none")
    lines += [f"  {d.deployment_id} ({'active' if d.active else 'inactive'})" for d in deployments]
    _print(args, value, "\n".join(lines))
    return 0


def run_platform_update(args: argparse.Namespace) -> int:
    with _database() as (session, settings):
        urls = {
            option: _check_url(value, "--" + option.replace("_", "-"), settings)
            for option, value in (
                ("auth_login_url", args.auth_login_url),
                ("auth_token_url", args.auth_token_url),
                ("jwks_url", args.jwks_url),
            )
            if value is not None
        }
        if args.client_id is not None and not args.client_id.strip():
            raise InvalidInputError("--client-id may not be empty.")
        if args.jwks_url and args.jwks_file:
            raise InvalidInputError("Give --jwks-url or --jwks-file, not both.")
        static = _static_key_set(args.jwks_file) if args.jwks_file else None
        if (
            not urls
            and static is None
            and args.client_id is None
            and args.token_audience is None
            and not args.name
        ):
            raise InvalidInputError(
                "Nothing to change: give at least one of --client-id, --auth-login-url, "
                "--token-url, --token-audience, --jwks-url, --jwks-file, --name."
            )
        audience: dict[str, Any] = {}
        if args.token_audience is not None:
            audience["auth_token_audience"] = args.token_audience or None
        info = registrations_repo.update_registration(
            session,
            args.registration_id,
            client_id=args.client_id,
            name=args.name or None,
            static_jwks=static,
            **urls,
            **audience,
        )
        deployments = registrations_repo.list_deployments(session, info.id)
        changed = sorted(
            option
            for option, value in vars(args).items()
            if option in {"client_id", "name", "token_audience", "jwks_file"} and value is not None
        )
        _audit(
            session,
            AuditAction.registration_update,
            info.id,
            f"registration {info.id}",
            {"changed": sorted([*urls, *changed]), "client_id": info.client_id},
        )
    _print(
        args,
        _registration_json(info, deployments),
        f"updated platform {info.id}: {info.issuer} (client id {info.client_id}); token URL "
        f"{info.auth_token_url}, login URL {info.auth_login_url}, JWKS "
        f"{info.jwks_url or 'static key set'}",
    )
    return 0


_CONTENT_WORDS = {
    "deployments": "deployments",
    "users": "users",
    "courses": "courses",
    "activities": "activities",
    "launches": "launches",
    "design_bindings": "design bindings",
    "enrolments": "learner enrolments",
    "learner_events": "learner events (their answers and progress)",
    "line_items": "grade columns",
    "scores": "queued or sent scores",
    "roster_members": "roster members",
}


def run_platform_remove(args: argparse.Namespace) -> int:
    with _database() as (session, _settings):
        info = registrations_repo.get_registration(session, args.registration_id)
        contents = registrations_repo.registration_contents(session, info.id)
        if args.yes:
            registrations_repo.remove_registration(session, info.id)
            _audit(
                session,
                AuditAction.registration_remove,
                info.id,
                f"registration {info.id}",
                {"issuer": info.issuer, "client_id": info.client_id},
            )
    counted = contents.as_dict()
    listed = "\n".join(f"  {counted[key]:>7} {words}" for key, words in _CONTENT_WORDS.items())
    if not args.yes:
        text = (
            f"platform {info.id}: {info.issuer} (client id {info.client_id}) holds:\n{listed}\n"
            "Nothing was deleted. Removing it deletes all of this for good (learners lose their "
            f"progress); to do so run 'adaptive-lti platform remove {info.id} --yes'."
        )
        _print(args, {"would_remove": _registration_json(info), "records": counted}, text)
        return 1
    _print(
        args,
        {"removed": _registration_json(info), "records": counted},
        f"removed platform {info.id}: {info.issuer} (client id {info.client_id}) and:\n{listed}",
    )
    return 0


def run_platform_approve(args: argparse.Namespace) -> int:
    with _database() as (session, _settings):
        info = registrations_repo.set_registration_status(
            session, args.registration_id, RegistrationStatus.active
        )
        _audit(
            session,
            AuditAction.registration_approve,
            info.id,
            f"registration {info.id}",
            {"issuer": info.issuer, "client_id": info.client_id},
        )
    _print(args, _registration_json(info), f"platform {info.id} ({info.issuer}) is active")
    return 0


def run_activate_deployment(args: argparse.Namespace) -> int:
    return _set_deployment_active(args, active=True)


def run_deactivate(args: argparse.Namespace) -> int:
    return _set_deployment_active(args, active=False)


def _set_deployment_active(args: argparse.Namespace, *, active: bool) -> int:
    with _database() as (session, _settings):
        registrations_repo.get_registration(session, args.registration_id)
        deployment = registrations_repo.set_deployment_active(
            session, args.registration_id, args.deployment_id, active=active, now=_now()
        )
        _audit(
            session,
            AuditAction.deployment_activate if active else AuditAction.deployment_deactivate,
            args.registration_id,
            f"deployment {deployment.deployment_id}",
        )
    state = "active" if active else "inactive"
    _print(
        args,
        _deployment_json(deployment),
        f"deployment {deployment.deployment_id} of platform {args.registration_id} is {state}",
    )
    return 0


def run_remove_deployment(args: argparse.Namespace) -> int:
    with _database() as (session, _settings):
        registrations_repo.get_registration(session, args.registration_id)
        registrations_repo.remove_deployment(session, args.registration_id, args.deployment_id)
        _audit(
            session,
            AuditAction.deployment_remove,
            args.registration_id,
            f"deployment {args.deployment_id}",
        )
    _print(
        args,
        {"removed": args.deployment_id, "registration_id": args.registration_id},
        f"removed deployment {args.deployment_id} of platform {args.registration_id}",
    )
    return 0


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "status": "active" if key.active else "retired",
        "created_at": key.created_at.isoformat(),
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        "public_jwk": dict(key.public_jwk),
    }


def run_keys_list(args: argparse.Namespace) -> int:
    with _database() as (session, settings):
        keys.ensure_signing_key(session, settings, _now())
        found = keys.list_keys(session)
    lines = [f"{'KID':<45} {'STATUS':<8} CREATED"]
    lines += [
        f"{key.kid:<45} {'active' if key.active else 'retired':<8} {key.created_at:%Y-%m-%d %H:%M}"
        for key in found
    ]
    _print(args, [_key_json(key) for key in found], "\n".join(lines))
    return 0


def run_keys_rotate(args: argparse.Namespace) -> int:
    with _database() as (session, settings):
        key = keys.rotate(session, settings, _now())
        _audit(session, AuditAction.key_rotate, None, f"key {key.kid}")
    _print(
        args,
        _key_json(key),
        f"new signing key {key.kid}; the old keys stay published until "
        "'adaptive-lti keys retire KID'",
    )
    return 0


def run_keys_retire(args: argparse.Namespace) -> int:
    with _database() as (session, _settings):
        keys.retire(session, args.kid, _now())
        _audit(session, AuditAction.key_retire, None, f"key {args.kid}")
    _print(args, {"retired": args.kid}, f"retired key {args.kid}: no longer published or used")
    return 0
