"""The LTI 1.3 tool side of a launch: OIDC login initiation, then the launch itself.

``LtiTool`` holds what one app needs (settings, the JWKS cache, the validator) and offers two
steps, each taking the request's database session and the current time:

* ``login`` (Security Framework §5.1.1, LTI Core 1.3 §4.1): check the third-party initiated
  login, store state and nonce, and say where to send the browser.
* ``accept_launch`` (Security Framework §5.1.3, LTI Core 1.3 §5): verify the id_token, apply the
  deployment policy, check that the browser is the one that logged in, use up state and nonce,
  and return the typed launch.

Both raise ``LaunchError`` naming the failed check. Writes that must outlive a refused launch
(JWKS cache, an unknown deployment recorded as inactive) use their own transaction, begun after
the request's session (which has only read by then) gave its connection back; everything else
goes through the request's session, which is rolled back on refusal. A request holds one
pooled connection at a time, and a normal launch checks out exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode, urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.core.lti import (
    DeploymentInfo,
    LaunchContext,
    LoginStateInfo,
    PlatformRegistrationInfo,
    RegistrationStatus,
)
from adaptive_lti.db import login_states_repo, registrations_repo
from adaptive_lti.db.session import end_read_only_transaction, transaction
from adaptive_lti.lti import fallback, storage
from adaptive_lti.lti.adapters import FastAPICookieService, FastAPIRequest
from adaptive_lti.lti.claims import TARGET_LINK_URI, parse_launch_context
from adaptive_lti.lti.platform_keys import PlatformKeys
from adaptive_lti.lti.validation import LaunchValidator
from adaptive_lti.settings import Settings, UnknownDeploymentPolicy

LAUNCH_PATH = "/lti/launch"
# Parameters a login initiation may carry (LTI Core 1.3 §4.1.1, client-side storage spec).
LOGIN_PARAMETERS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "lti_deployment_id",
    "client_id",
)


def _bad_login(check: str, message: str, hint: str, status_code: int = 400) -> LaunchError:
    return LaunchError(check, message, hint=hint, status_code=status_code)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class LoginRedirect:
    """Where the login sends the browser: the platform's auth URL with the OIDC parameters."""

    url: str
    login: LoginStateInfo
    registration: PlatformRegistrationInfo
    # LTI client-side storage: the frame to postMessage state and nonce to, and its origin.
    storage_target: str | None
    platform_origin: str


@dataclass(frozen=True)
class AcceptedLaunch:
    context: LaunchContext
    registration: PlatformRegistrationInfo
    deployment: DeploymentInfo
    login: LoginStateInfo


@dataclass(frozen=True)
class BindingNeeded:
    """The token is genuine but the browser's link to the login is missing (cookie refused in
    the iframe): prove it through platform storage, or start again in a new window."""

    kind: Literal["platform-storage", "new-window"]
    id_token: str
    state: str
    storage_target: str | None
    platform_origin: str
    relaunch_url: str


class LtiTool:
    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._session_factory = session_factory
        self.platform_keys = PlatformKeys(
            session_factory,
            refetch_interval_seconds=settings.jwks_refetch_interval_seconds,
            transport=transport,
            fetch_timeout_seconds=settings.jwks_fetch_timeout_seconds,
            failure_cache_seconds=settings.jwks_failure_cache_seconds,
            fetch_wait_seconds=settings.jwks_fetch_wait_seconds,
        )
        self.validator = LaunchValidator(
            self.platform_keys,
            clock_leeway_seconds=settings.clock_leeway_seconds,
            max_token_age_seconds=settings.max_token_age_seconds,
        )
        self.tool_origin = _origin(settings.base_url)
        self.redirect_uri = settings.base_url.rstrip("/") + LAUNCH_PATH

    @property
    def secure(self) -> bool:
        return self.settings.base_url.startswith("https://")

    # -- login ---------------------------------------------------------------------------

    def login(
        self,
        session: Session,
        request: FastAPIRequest,
        cookies: FastAPICookieService,
        now: datetime,
    ) -> LoginRedirect:
        issuer = request.get_param("iss")
        if not issuer:
            raise _bad_login(
                "issuer (iss)",
                "The login request does not say which platform it comes from (no 'iss').",
                "Start the activity from the platform; a login URL cannot be opened directly.",
            )
        login_hint = request.get_param("login_hint")
        if not login_hint:
            raise _bad_login(
                "login hint",
                "The login request has no login_hint.",
                "The platform must send login_hint; check the tool's login URL on the platform.",
            )
        target_link_uri = request.get_param("target_link_uri")
        if not target_link_uri:
            raise _bad_login(
                "target link URI",
                "The login request has no target_link_uri.",
                "Set the tool URL on the platform to " + self.redirect_uri + ".",
            )
        if _origin(target_link_uri) != self.tool_origin:
            # Open-redirect guard: only our own pages may be the launch's destination.
            raise _bad_login(
                "target link URI",
                f"The target_link_uri {target_link_uri[:200]!r} is not on this tool "
                f"({self.tool_origin}).",
                "Set the tool URL on the platform to " + self.redirect_uri + ".",
            )
        deployment_hint = request.get_param("lti_deployment_id")
        registration, deployment = self._login_registration(
            session, issuer, request.get_param("client_id"), deployment_hint
        )
        if deployment_hint:
            self._check_deployment_at_login(registration, deployment_hint, deployment)
        storage_target = request.get_param("lti_storage_target")
        login = storage.begin_login(
            session,
            storage.LoginRequest(
                registration_id=registration.id,
                target_link_uri=target_link_uri,
                login_hint=login_hint,
                lti_message_hint=request.get_param("lti_message_hint"),
                deployment_hint=deployment_hint[:255] if deployment_hint else None,
                storage_target=storage_target[:255] if storage_target else None,
            ),
            now=now,
            ttl_seconds=self.settings.login_ttl_seconds,
        )
        storage.bind_state_cookie(cookies, login.state, self.settings.login_ttl_seconds)
        # OIDC authentication request (LTI Core 1.3 §4.1.1, Security Framework §5.1.1.2).
        auth_params = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": registration.client_id,
            "redirect_uri": self.redirect_uri,
            "state": login.state,
            "nonce": login.nonce,
            "login_hint": login_hint,
        }
        if login.lti_message_hint:
            auth_params["lti_message_hint"] = login.lti_message_hint
        separator = "&" if "?" in registration.auth_login_url else "?"
        return LoginRedirect(
            url=registration.auth_login_url + separator + urlencode(auth_params),
            login=login,
            registration=registration,
            storage_target=login.storage_target,
            platform_origin=_origin(registration.auth_login_url),
        )

    def _login_registration(
        self, session: Session, issuer: str, client_id: str | None, deployment_id: str | None
    ) -> tuple[PlatformRegistrationInfo, DeploymentInfo | None]:
        """The registration and the named deployment: one query when client_id is sent."""
        hint = (
            "An administrator registers platforms with 'adaptive-lti platform add'; "
            "'adaptive-lti platform list' shows them."
        )
        deployment: DeploymentInfo | None = None
        if client_id:
            found = registrations_repo.lookup_registration(
                session, issuer, client_id, deployment_id
            )
            if found is None:
                known = registrations_repo.registrations_for_issuer(session, issuer)
                if known:
                    raise _bad_login(
                        "client id",
                        f"The platform {issuer[:120]!r} is registered, but not with client id "
                        f"{client_id[:80]!r}.",
                        hint,
                    )
                raise _bad_login(
                    "issuer (iss)", f"No platform is registered with issuer {issuer[:120]!r}.", hint
                )
            registration, deployment = found.registration, found.deployment
        else:
            candidates = registrations_repo.registrations_for_issuer(session, issuer)
            if not candidates:
                raise _bad_login(
                    "issuer (iss)", f"No platform is registered with issuer {issuer[:120]!r}.", hint
                )
            if len(candidates) > 1:
                raise _bad_login(
                    "client id",
                    f"The platform {issuer[:120]!r} has several registrations and the login did "
                    "not say which (no client_id).",
                    "Configure the platform to send client_id with the login request.",
                )
            registration = candidates[0]
            if deployment_id:
                deployment = registrations_repo.find_deployment(
                    session, registration.id, deployment_id
                )
        if registration.status is not RegistrationStatus.active:
            raise _bad_login(
                "registration approved",
                f"The registration of {issuer} (client id {registration.client_id!r}) is waiting "
                "for an administrator's approval.",
                f"Approve it with 'adaptive-lti platform approve {registration.id}'.",
                status_code=403,
            )
        return registration, deployment

    def _deployment_refusal(
        self,
        registration: PlatformRegistrationInfo,
        deployment_id: str,
        *,
        recorded: bool,
        deactivated_at: datetime | None = None,
    ) -> LaunchError:
        command = (
            f"adaptive-lti platform activate-deployment {registration.id} '{deployment_id[:80]}'"
        )
        if deactivated_at is not None:
            message = (
                f"The deployment {deployment_id[:80]!r} of {registration.issuer} was "
                f"deactivated by an administrator on {deactivated_at:%Y-%m-%d %H:%M} UTC: the "
                "tool accepts no launches from it."
            )
        elif recorded:
            message = (
                f"The deployment {deployment_id[:80]!r} of {registration.issuer} is not active "
                "yet: the tool has recorded it and is waiting for an administrator."
            )
        else:
            message = (
                f"The deployment {deployment_id[:80]!r} of {registration.issuer} is not "
                "registered with this tool."
            )
        hint = f"If this deployment is expected, an administrator can run: {command}"
        if deactivated_at is not None:
            hint = f"Ask the tool's administrator whether it should be reactivated: {command}"
        return LaunchError("deployment registered", message, hint=hint, status_code=403)

    def _refuse_if_inactive(
        self,
        registration: PlatformRegistrationInfo,
        deployment_id: str,
        deployment: DeploymentInfo,
    ) -> None:
        if not deployment.active:
            raise self._deployment_refusal(
                registration, deployment_id, recorded=True, deactivated_at=deployment.deactivated_at
            )

    def _refuse_if_unknown_is_rejected(
        self, registration: PlatformRegistrationInfo, deployment_id: str
    ) -> None:
        if self.settings.unknown_deployment_policy is UnknownDeploymentPolicy.reject:
            raise self._deployment_refusal(registration, deployment_id, recorded=False)

    def _check_deployment_at_login(
        self,
        registration: PlatformRegistrationInfo,
        deployment_id: str,
        deployment: DeploymentInfo | None,
    ) -> None:
        if deployment is not None:
            self._refuse_if_inactive(registration, deployment_id, deployment)
            return
        self._refuse_if_unknown_is_rejected(registration, deployment_id)
        # record-inactive: the login's deployment id is not signed; the launch records it.

    # -- launch --------------------------------------------------------------------------

    def accept_launch(
        self,
        session: Session,
        request: FastAPIRequest,
        cookies: FastAPICookieService,
        now: datetime,
    ) -> AcceptedLaunch | BindingNeeded:
        id_token = request.get_param("id_token") or ""
        state = request.get_param("state")
        if not id_token:
            raise LaunchError(
                "id_token",
                "The launch carries no id_token.",
                hint="Start the activity from the platform's course page.",
            )
        if not state:
            raise LaunchError(
                storage.STATE_CHECK,
                "The launch carries no state, so it cannot be matched with a login.",
                hint="Start the activity from the platform's course page.",
            )
        verified = self.validator.verify(session, id_token, now)
        deployment = self._launch_deployment(
            session, verified.registration, verified.deployment_id, verified.deployment, now
        )
        if not storage.valid_state_shape(state):
            raise LaunchError(
                storage.STATE_CHECK,
                "The launch's state was not issued by this tool.",
                hint="Start the activity from the platform's course page.",
            )
        storage_proof = request.get_param("lti_storage_state")
        if not storage.browser_holds_state(cookies, state, storage_proof):
            return self._binding_needed(
                session,
                verified.registration,
                id_token,
                state,
                storage_tried=storage_proof is not None,
            )
        login = storage.consume_login(
            session,
            state=state,
            registration_id=verified.registration.id,
            nonce=verified.nonce,
            target_link_uri=str(verified.claims[TARGET_LINK_URI]),
            now=now,
        )
        context = parse_launch_context(verified.claims, verified.registration.client_id)
        return AcceptedLaunch(context, verified.registration, deployment, login)

    def _launch_deployment(
        self,
        session: Session,
        registration: PlatformRegistrationInfo,
        deployment_id: str,
        deployment: DeploymentInfo | None,
        now: datetime,
    ) -> DeploymentInfo:
        if deployment is not None:
            self._refuse_if_inactive(registration, deployment_id, deployment)
            return deployment
        self._refuse_if_unknown_is_rejected(registration, deployment_id)
        # The deployment id is signed: record it (own transaction, so the refusal keeps it),
        # after the request's session, which has only read, gave its connection back.
        end_read_only_transaction(session)
        with transaction(self._session_factory) as own:
            registrations_repo.record_inactive_deployment(own, registration.id, deployment_id, now)
        raise self._deployment_refusal(registration, deployment_id, recorded=True)

    def _binding_needed(
        self,
        session: Session,
        registration: PlatformRegistrationInfo,
        id_token: str,
        state: str,
        *,
        storage_tried: bool,
    ) -> BindingNeeded:
        login = login_states_repo.peek_login_state(session, state)
        if login is None or login.registration_id != registration.id:
            raise LaunchError(
                storage.STATE_CHECK,
                "This launch's state is unknown: it was already used, it expired, or the login "
                "did not start in this browser.",
                hint="Launches work once. Go back to the course page and open the activity again.",
            )
        relaunch_url = fallback.login_initiation_url(
            registration, login, tool_base_url=self.settings.base_url
        )
        return BindingNeeded(
            # Platform storage is asked once; if it did not hold the state, a new window is left.
            kind="platform-storage" if login.storage_target and not storage_tried else "new-window",
            id_token=id_token,
            state=state,
            storage_target=login.storage_target,
            platform_origin=_origin(registration.auth_login_url),
            relaunch_url=relaunch_url,
        )
