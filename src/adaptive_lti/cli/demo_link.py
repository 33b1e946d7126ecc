"""The tool's side of the demo platform's one seam (``demo/tool_link.py``).

What an administrator and the network do for a real platform: register it with the tool as
``platform add`` does, and hand it the tool's public key set and the secret every server process
shares. Here and in ``cli/app.py`` only does the tool meet the demo package.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import ConflictError
from adaptive_lti.core.lti import PlatformRegistrationInfo, RegistrationStatus
from adaptive_lti.db import registrations_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.demo.platform import DemoPlatform
from adaptive_lti.lti import keys
from adaptive_lti.settings import Settings

log = logging.getLogger("adaptive_lti.cli.demo_link")


class ToolLinkInProcess:
    """``demo.tool_link.ToolLink`` answered from the tool's own database, in this process."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self._session_factory = session_factory
        self._settings = settings

    def register_platform(self, platform: DemoPlatform, now: datetime) -> None:
        with transaction(self._session_factory) as session:
            register_with_tool(session, platform, now)

    def signing_secret(self) -> str:
        with transaction(self._session_factory) as session:
            return keys.tool_secret(session, self._settings)

    def published_jwks(self) -> dict[str, Any]:
        with transaction(self._session_factory) as session:
            return keys.published_jwks(session)

    def registration_at_tool(self, issuer: str, client_id: str) -> PlatformRegistrationInfo | None:
        with transaction(self._session_factory) as session:
            return registrations_repo.find_registration(session, issuer, client_id)


def register_with_tool(session: Session, platform: DemoPlatform, now: datetime) -> None:
    """Register the demo platform with the tool, as an admin would with ``platform add``.

    Idempotent, and safe when several server processes start at once. The platform's public key
    is registered as a static key set: a launch then needs no HTTP call from the tool to its own
    server. A registration made with another key (the key file was deleted) is replaced.
    """
    jwks = platform.key.public_jwks()
    found = registrations_repo.find_registration(session, platform.issuer, platform.client_id)
    if found is not None and (
        found.static_jwks is None
        or dict(found.static_jwks) != jwks
        or (found.auth_login_url, found.auth_token_url) != (platform.auth_url, platform.token_url)
    ):
        log.warning(
            "the demo platform's key or endpoints changed since it was registered: registering "
            "it again (launches recorded under the old registration are removed)"
        )
        registrations_repo.remove_registration(session, found.id)
        found = None
    if found is None:
        try:
            registrations_repo.add_registration(
                session,
                issuer=platform.issuer,
                client_id=platform.client_id,
                auth_login_url=platform.auth_url,
                auth_token_url=platform.token_url,
                static_jwks=jwks,
                name="adaptive-lti demo platform",
                deployment_ids=[platform.deployment_id],
                now=now,
            )
        except ConflictError:
            # Another process registered it at the same moment: theirs is the same.
            return
        log.info("registered the demo platform %s with the tool", platform.issuer)
        return
    if found.status is not RegistrationStatus.active:
        registrations_repo.set_registration_status(session, found.id, RegistrationStatus.active)
    deployment = registrations_repo.find_deployment(session, found.id, platform.deployment_id)
    if deployment is None or not deployment.active:
        registrations_repo.set_deployment_active(
            session, found.id, platform.deployment_id, active=True, now=now
        )
