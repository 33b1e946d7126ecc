"""Where the "Open the activity in a new window" link of a framed launch goes.

When the browser refuses the tool's cookies inside the platform's frame, the launch cannot be tied
to its login (LTI Core 1.3 §5.1.1.2 state check) and the tool offers a new, top-level window. The
link must start a *new* launch from the platform, in that window:

- Moodle's ``lti_message_hint`` carries a ``launchid`` (``{"cmid": 7, "launchid":
  "ltilaunch1_..."}``) that ``mod/lti/auth.php`` deletes from the session on first use: a login
  repeated with the same hint ends on Moodle's "Invalid request". The way back in is Moodle's own
  ``<site>/mod/lti/launch.php?id=<cmid>``, which makes a fresh hint for the activity (the course
  module id is in the hint, or is the hint on sites that send only the number).
- Other platforms: the tool's login initiation URL again with the login's parameters (a platform
  whose hint is reusable answers it; nothing better is known of it).

Moodle 4.5 sends no ``lti_storage_target``, so its frames never reach platform storage.
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session

from adaptive_lti.core.lti import LoginStateInfo, PlatformRegistrationInfo
from adaptive_lti.db import login_states_repo, registrations_repo

TOOL_PLATFORM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"
MOODLE = "moodle"
MOODLE_AUTH_PATH = "/mod/lti/auth.php"
MOODLE_LAUNCH_PATH = "/mod/lti/launch.php"
LOGIN_PATH = "/lti/login"


@dataclass(frozen=True)
class NewWindowLaunch:
    """The link, and why it goes there (for the log and the page)."""

    url: str
    # "moodle-launch-php": Moodle's own activity launch; "login-initiation": the tool's login.
    route: str
    platform_family: str | None
    course_module_id: str | None


def platform_family(verified_id_token: str) -> str | None:
    """``tool_platform.product_family_code`` of an id_token the validator has verified."""
    try:
        payload = verified_id_token.split(".")[1]
        claims: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    platform = claims.get(TOOL_PLATFORM_CLAIM) if isinstance(claims, dict) else None
    code = platform.get("product_family_code") if isinstance(platform, dict) else None
    return code.strip().lower() if isinstance(code, str) and code.strip() else None


def moodle_course_module_id(lti_message_hint: str | None) -> str | None:
    """The course module id in Moodle's hint: ``{"cmid": ...}`` (Moodle 4.x) or the bare number.
    None for course module 0 (deep linking from the activity chooser: no activity yet)."""
    if not lti_message_hint:
        return None
    value: Any = lti_message_hint.strip()
    with contextlib.suppress(ValueError):
        value = json.loads(value)
    if isinstance(value, dict):
        value = value.get("cmid")
    text = (
        str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    )
    return text if text.isdigit() and int(text) > 0 else None


def _is_moodle(registration: PlatformRegistrationInfo, family: str | None) -> bool:
    if family is not None:
        return family == MOODLE
    return urlsplit(registration.auth_login_url).path.endswith(MOODLE_AUTH_PATH)


def login_initiation_url(
    registration: PlatformRegistrationInfo, login: LoginStateInfo, *, tool_base_url: str
) -> str:
    """The tool's own login initiation again, with what the platform sent the first time."""
    params = {
        "iss": registration.issuer,
        "client_id": registration.client_id,
        "login_hint": login.login_hint,
        "target_link_uri": login.target_link_uri,
    }
    if login.lti_message_hint:
        params["lti_message_hint"] = login.lti_message_hint
    if login.deployment_hint:
        params["lti_deployment_id"] = login.deployment_hint
    return tool_base_url.rstrip("/") + LOGIN_PATH + "?" + urlencode(params)


def new_window_launch(
    registration: PlatformRegistrationInfo,
    login: LoginStateInfo,
    *,
    family: str | None,
    tool_base_url: str,
) -> NewWindowLaunch:
    """Where the new-window link restarts the launch (see the module's docstring)."""
    course_module = moodle_course_module_id(login.lti_message_hint)
    if _is_moodle(registration, family) and course_module is not None:
        site = registration.issuer.rstrip("/")
        return NewWindowLaunch(
            url=f"{site}{MOODLE_LAUNCH_PATH}?{urlencode({'id': course_module})}",
            route="moodle-launch-php",
            platform_family=family,
            course_module_id=course_module,
        )
    return NewWindowLaunch(
        url=login_initiation_url(registration, login, tool_base_url=tool_base_url),
        route="login-initiation",
        platform_family=family,
        course_module_id=course_module,
    )


def relaunch_for_login(
    session: Session, *, state: str, id_token: str, tool_base_url: str
) -> NewWindowLaunch | None:
    """The new-window link for the login ``state`` of a verified ``id_token`` whose cookie the
    frame refused; None when the login is gone."""
    login = login_states_repo.peek_login_state(session, state)
    if login is None:
        return None
    registration = registrations_repo.get_registration(session, login.registration_id)
    return new_window_launch(
        registration, login, family=platform_family(id_token), tool_base_url=tool_base_url
    )
