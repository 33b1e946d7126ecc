"""A small LTI 1.3 platform built into the server for the demo and the end-to-end tests.

It plays the VLE's part of the LTI 1.3 launch (LTI Core 1.3 §4, 1EdTech Security Framework 1.0
§5.1.1) and behaves like Moodle 4.5 where the two could differ, so that the tool meets in the demo
what it meets in production:

- the issuer is the platform's site root URL; ``login_hint`` and ``sub`` are the user id;
  ``lti_message_hint`` is the course-module id; the deployment id is ``"1"``;
- the authorization endpoint checks the tool's authentication request as Moodle's
  ``mod/lti/auth.php`` does, in the same order, and sends errors back to the tool as a form POST
  carrying ``error`` (and ``error_description``) once the redirect URI is known to be registered;
- the id_token lives 60 seconds (``exp = iat + 60``) and carries Moodle's ``ext`` and ``lti-bo``
  claims and ``tool_platform.product_family_code``.

Who is "logged in to the platform" is a short-lived signed cookie set when a person is picked on
the home page (``PendingLaunch``), as Moodle keeps the pending launch in its session: the
authorization endpoint only signs a token for that person and that activity.

This module holds the protocol and the JOSE work; ``demo/routes/`` serves it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from itsdangerous import BadSignature, URLSafeTimedSerializer

from adaptive_lti.core.errors import AdaptiveLtiError

# Where the platform is mounted in the tool's server.
DEMO_PLATFORM_PATH = "/demo-platform"
# The client id the demo platform gave the tool (Moodle generates a random one; ours is fixed so
# a restarted demo keeps its registration).
DEMO_CLIENT_ID = "adaptive-lti-demo-client"
# Moodle's deployment id is the tool type id, a small integer sent as a string.
DEMO_DEPLOYMENT_ID = "1"
# Moodle 4.5's id_tokens live 60 seconds.
ID_TOKEN_LIFETIME_SECONDS = 60
# How long a person picked on the home page may take to come back through the tool's login.
PENDING_LAUNCH_MAX_AGE_SECONDS = 600
PENDING_LAUNCH_COOKIE = "demo_platform_launch"

LTI_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_ENDPOINT_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
BASIC_OUTCOME_CLAIM = "https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome"
ROLE_LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ROLE_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
DEEP_LINKING_SETTINGS_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
# Moodle sends course-module id 0 as lti_message_hint when a teacher adds a tool from the
# activity chooser: there is no activity yet (LTI Deep Linking 2.0 §4.4).
DEEP_LINKING_COURSE_MODULE_ID = "0"
AGS_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
)


class DemoPlatformError(AdaptiveLtiError):
    """The demo platform cannot answer the tool at all (it cannot trust where to send an answer).

    Errors it can send back to the tool travel as a form POST instead (``FormPost``), as Moodle's.
    """

    status_code = 400


# --- the demo's course, activity and people --------------------------------------------------


@dataclass(frozen=True)
class DemoCourse:
    id: str
    label: str
    title: str


@dataclass(frozen=True)
class DemoActivity:
    """An LTI activity in the course: Moodle's course module and LTI instance."""

    course_module_id: str  # sent as lti_message_hint
    resource_link_id: str  # Moodle's LTI instance id
    # The activity's gradebook column; None when it has none (an activity deep-linked without a
    # lineItem: Moodle then does not accept grades from it until the tool makes a line item).
    line_item_id: str | None
    title: str
    description: str
    # The activity's custom parameters, as a teacher types them in Moodle's "Custom parameters":
    # ``design=ID`` binds the activity to a published design on its first launch.
    custom: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoPerson:
    key: str  # short stable name used in URLs and forms, e.g. "ana"
    user_id: str  # Moodle user id: login_hint and sub
    username: str
    given_name: str
    family_name: str
    email: str
    roles: tuple[str, ...]
    background: str  # one line for the home page
    locale: str = "en"
    # Custom parameters (LTI Core §5.4.6): what the platform knows of the person's background.
    custom: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def is_instructor(self) -> bool:
        return ROLE_INSTRUCTOR in self.roles


DEMO_COURSE = DemoCourse(id="2", label="PROG101", title="Introduction to Programming")
DEMO_ACTIVITY = DemoActivity(
    course_module_id="7",
    resource_link_id="1",
    line_item_id="1",
    title="Adaptive programming path",
    description="Your route through the course, chosen from what you know and what you show.",
    # The example course (examples/intro-programming), which `adaptive-lti demo` publishes.
    custom={"design": "intro-programming"},
)


def _learner(
    key: str,
    user_id: str,
    family_name: str,
    prior_programming: str | None,
    goal: str | None,
    background: str,
    locale: str = "en",
) -> DemoPerson:
    custom = {}
    if prior_programming is not None:
        custom["prior_programming"] = prior_programming
    if goal is not None:
        custom["goal"] = goal
    given_name = key.capitalize()
    username = f"{key}.{family_name.lower()}"
    return DemoPerson(
        key=key,
        user_id=user_id,
        username=username,
        given_name=given_name,
        family_name=family_name,
        email=f"{username}@demo.example",
        roles=(ROLE_LEARNER,),
        background=background,
        locale=locale,
        custom=custom,
    )


# The personas of the reference course (examples/intro-programming): each background is sent as
# custom parameters, the way a Moodle activity passes what the VLE knows about a learner.
DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    _learner("ana", "3", "Alves", "none", "interest", "Has never programmed; learns for interest."),
    _learner("ben", "4", "Brown", "experienced", "vocational", "Experienced; wants a job skill."),
    _learner(
        "chen",
        "5",
        "Chen",
        "some",
        "academic",
        "Some programming; studies for a degree. Portuguese (Brazil) locale.",
        locale="pt_br",
    ),
    _learner(
        "dara", "6", "Doyle", "none", "academic", "Has never programmed; studies for a degree."
    ),
    _learner("eve", "7", "Evans", "experienced", "interest", "Says experienced; learns for fun."),
    _learner("femi", "8", "Fashola", "some", "vocational", "Some programming; wants a job skill."),
    _learner("gabi", "9", "Garcia", None, None, "Nothing known: the tool must ask."),
    DemoPerson(
        key="irene",
        user_id="10",
        username="irene.ibsen",
        given_name="Irene",
        family_name="Ibsen",
        email="irene.ibsen@demo.example",
        roles=(ROLE_INSTRUCTOR,),
        background="Teaches the course; sees routes and who needs help.",
    ),
)


# --- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformKey:
    """The platform's RSA signing key and its public JWK (kid = RFC 7638 thumbprint)."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def from_pem(cls, pem: bytes) -> PlatformKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DemoPlatformError(
                "The demo platform's key file does not hold an RSA private key.",
                hint="Delete the key file; the demo makes a new one on its next start.",
            )
        return cls(private_key=key, kid=_jwk_thumbprint(key.public_key()))

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _base64url_uint(numbers.n),
            "e": _base64url_uint(numbers.e),
        }

    def public_jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.public_jwk()]}


def _base64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _jwk_thumbprint(public_key: rsa.RSAPublicKey) -> str:
    # RFC 7638 §3: the required members, sorted, no whitespace, SHA-256, base64url.
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _base64url_uint(numbers.e), "kty": "RSA", "n": _base64url_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def generate_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_or_create_platform_key(path: Path) -> PlatformKey:
    """Read the platform key from ``path``, creating it (mode 0600) on first use.

    Several server processes may start at once: the key is written to a private temporary file
    and hard-linked into place, so a reader never sees half a key and the first writer wins.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".demo-platform-key-")
        try:
            with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it with mode 0600
                handle.write(generate_private_key_pem())
            with contextlib.suppress(FileExistsError):  # another process was first: use its key
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    try:
        return PlatformKey.from_pem(path.read_bytes())
    except ValueError as error:
        raise DemoPlatformError(
            f"The demo platform's key file {path} cannot be read as a PEM private key ({error}).",
            hint="Delete the key file; the demo makes a new one on its next start.",
        ) from error


# --- the pending launch (the platform's "session") ---------------------------------------------


@dataclass(frozen=True)
class PendingLaunch:
    """Who picked which activity on the home page; Moodle keeps this in ``$SESSION``."""

    user_id: str
    course_module_id: str
    # The tool registration the launch goes through, when it is not the platform's built-in one
    # (a tool an administrator registered by dynamic registration): its client id.
    client_id: str | None = None


class PendingLaunchCodec:
    """Signs and reads the pending-launch cookie (HMAC with the tool's secret, timestamped)."""

    def __init__(self, secret_key: str, max_age: int = PENDING_LAUNCH_MAX_AGE_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="adaptive-lti demo platform")
        self._max_age = max_age

    def encode(self, pending: PendingLaunch) -> str:
        parts = [pending.user_id, pending.course_module_id]
        if pending.client_id is not None:
            parts.append(pending.client_id)
        return self._serializer.dumps(parts)

    def decode(self, value: str | None) -> PendingLaunch | None:
        """The pending launch, or None when the cookie is absent, tampered with or too old."""
        if not value:
            return None
        try:
            loaded = self._serializer.loads(value, max_age=self._max_age)
        except BadSignature:  # also covers SignatureExpired
            return None
        if (
            not isinstance(loaded, list)
            or len(loaded) not in (2, 3)
            or not all(isinstance(part, str) for part in loaded)
        ):
            return None
        return PendingLaunch(
            user_id=loaded[0],
            course_module_id=loaded[1],
            client_id=loaded[2] if len(loaded) == 3 else None,
        )


# --- what the platform sends -------------------------------------------------------------------


@dataclass(frozen=True)
class FormPost:
    """An HTML form the browser submits by itself: Moodle's way to send anything to the tool."""

    action: str
    fields: dict[str, str]

    @property
    def is_error(self) -> bool:
        return "error" in self.fields


@dataclass(frozen=True)
class DemoPlatform:
    """The demo platform's configuration and its protocol steps. Immutable; time is an argument."""

    issuer: str  # the platform's site root URL, no trailing slash
    key: PlatformKey
    tool_login_url: str  # the tool's OIDC login initiation URL
    tool_launch_url: str  # target_link_uri and the one registered redirect URI
    client_id: str = DEMO_CLIENT_ID
    deployment_id: str = DEMO_DEPLOYMENT_ID
    course: DemoCourse = DEMO_COURSE
    activity: DemoActivity = DEMO_ACTIVITY
    people: tuple[DemoPerson, ...] = DEMO_PEOPLE

    @classmethod
    def for_tool(cls, tool_base_url: str, key: PlatformKey) -> DemoPlatform:
        """The demo platform mounted in the tool's own server at ``tool_base_url``."""
        base = tool_base_url.rstrip("/")
        return cls(
            issuer=base + DEMO_PLATFORM_PATH,
            key=key,
            tool_login_url=base + "/lti/login",
            tool_launch_url=base + "/lti/launch",
        )

    # Endpoints, as a tool's administrator registers them.
    @property
    def auth_url(self) -> str:
        return self.issuer + "/auth"

    @property
    def token_url(self) -> str:
        return self.issuer + "/token"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/jwks.json"

    @property
    def registration_url(self) -> str:
        """Where a tool POSTs its dynamic registration (Moodle: mod/lti/openid-registration.php)."""
        return self.issuer + "/registration"

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        return (self.tool_launch_url,)

    def openid_configuration(self) -> dict[str, Any]:
        """The platform's OpenID configuration (LTI Dynamic Registration 1.0 §3.4), as Moodle's."""
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": self.jwks_url,
            "authorization_endpoint": self.auth_url,
            "registration_endpoint": self.registration_url,
            "scopes_supported": [
                "openid",
                *AGS_SCOPES,
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
            ],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.5 (adaptive-lti demo)",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]},
                ],
            },
        }

    def through_registered_tool(self, client_id: str, deployment_id: str) -> DemoPlatform:
        """The same platform launching through another registration of the tool (one made by
        dynamic registration): its client id and deployment id (Moodle's tool type id)."""
        return replace(self, client_id=client_id, deployment_id=deployment_id)

    def person(self, key_or_user_id: str) -> DemoPerson | None:
        for person in self.people:
            if key_or_user_id in (person.key, person.user_id):
                return person
        return None

    def find_activity(
        self, course_module_id: str, added: Sequence[DemoActivity] = ()
    ) -> DemoActivity | None:
        """The course's fixed activity or one a teacher ``added`` by deep linking."""
        for activity in (self.activity, *added):
            if activity.course_module_id == course_module_id:
                return activity
        return None

    # Step 1 (LTI Core 1.3 §4.1, Security Framework §5.1.1.1): third-party initiated login.
    def login_initiation(
        self, person: DemoPerson, activity: DemoActivity | None = None
    ) -> FormPost:
        """The form the browser posts to the tool's login URL to start a launch as ``person``
        (of ``activity``, the course's fixed activity unless told)."""
        return self._login_form(person, (activity or self.activity).course_module_id)

    def deep_linking_initiation(self, person: DemoPerson) -> FormPost:
        """The login that starts a deep linking request: Moodle's hint is course module 0."""
        return self._login_form(person, DEEP_LINKING_COURSE_MODULE_ID)

    def _login_form(self, person: DemoPerson, course_module_id: str) -> FormPost:
        return FormPost(
            action=self.tool_login_url,
            fields={
                "iss": self.issuer,
                "target_link_uri": self.tool_launch_url,
                "login_hint": person.user_id,
                "lti_message_hint": course_module_id,
                "client_id": self.client_id,
                "lti_deployment_id": self.deployment_id,
            },
        )

    def pending_launch_for(
        self, person: DemoPerson, activity: DemoActivity | None = None
    ) -> PendingLaunch:
        return PendingLaunch(
            user_id=person.user_id, course_module_id=(activity or self.activity).course_module_id
        )

    def pending_deep_linking_for(self, person: DemoPerson) -> PendingLaunch:
        return PendingLaunch(user_id=person.user_id, course_module_id=DEEP_LINKING_COURSE_MODULE_ID)

    def login_initiation_url(self, person: DemoPerson) -> str:
        """The same login initiation as a GET URL (the spec allows both)."""
        return f"{self.tool_login_url}?{urlencode(self.login_initiation(person).fields)}"

    # Step 2 (Security Framework §5.1.1.2-3): the authentication request and its response.
    def authorize(
        self,
        request: Mapping[str, str],
        pending: PendingLaunch | None,
        now: int,
        *,
        added_activities: Sequence[DemoActivity] = (),
        deep_link_return_url: str | None = None,
    ) -> FormPost:
        """Answer the tool's authentication request, checking it as Moodle's auth.php does.

        The pending launch names the activity (one of the course's, ``added_activities``
        included) or course module 0 for a deep linking request, whose answer is sent to
        ``deep_link_return_url``.

        Returns the form to post to the tool: ``id_token`` and ``state``, or ``error`` (with
        ``error_description``) and ``state``. Raises ``DemoPlatformError`` when the platform
        cannot trust the redirect URI (no launch in progress, unknown client, unregistered URI):
        answering to an untrusted address would hand a signed token to whoever asked.
        """

        def param(name: str) -> str:
            return str(request.get(name, "") or "")

        error, description = "", ""
        required = ("scope", "response_type", "client_id", "redirect_uri", "login_hint", "nonce")
        missing = [name for name in required if not param(name)]
        if missing:
            error, description = "invalid_request", "Missing " + ", ".join(missing)
        elif pending is None or param("lti_message_hint") != pending.course_module_id:
            error, description = "invalid_request", "No launch id in LTI hint"
        elif param("scope") != "openid":
            error, description = "invalid_scope", "scope must be openid"
        elif param("response_type") != "id_token":
            error, description = "unsupported_response_type", "response_type must be id_token"
        elif param("client_id") != self.client_id:
            error, description = "unauthorized_client", "Unknown client_id"
        elif param("login_hint") != pending.user_id:
            error, description = "access_denied", "login_hint is not the logged-in user"

        # Without a launch in progress or with a URI we did not register there is nowhere safe
        # to send even an error: Moodle throws an exception page here, so do we.
        if pending is None:
            raise DemoPlatformError(
                "The demo platform has no launch in progress for this browser.",
                hint="Start again from the demo platform's home page and pick a person. If you "
                "did, your browser may be blocking the demo platform's cookie.",
            )
        if param("redirect_uri") not in self.redirect_uris:
            raise DemoPlatformError(
                f"The redirect_uri {param('redirect_uri')!r} is not registered for this tool "
                f"(registered: {', '.join(self.redirect_uris)}).",
                hint="The tool must send exactly the redirect URI registered with the platform.",
            )

        if not error:
            response_mode = param("response_mode")
            prompt = param("prompt")
            if not response_mode:
                error, description = "invalid_request", "Missing response_mode"
            elif response_mode != "form_post":
                error, description = "invalid_request", "Invalid response_mode"
            elif prompt and prompt != "none":
                error, description = "invalid_request", "Invalid prompt"

        fields: dict[str, str] = {}
        if error:
            fields["error"] = error
            fields["error_description"] = description
        else:
            person = self.person(pending.user_id)
            if person is None:  # the cookie is signed by us: only a changed people list does this
                raise DemoPlatformError(
                    f"The demo platform has no person with user id {pending.user_id!r}.",
                    hint="Start again from the demo platform's home page.",
                )
            fields["id_token"] = self.sign(
                self._claims_for(
                    person,
                    pending.course_module_id,
                    param("nonce"),
                    now,
                    added_activities,
                    deep_link_return_url,
                )
            )
        if "state" in request:
            fields["state"] = param("state")
        return FormPost(action=param("redirect_uri"), fields=fields)

    def _claims_for(
        self,
        person: DemoPerson,
        course_module_id: str,
        nonce: str,
        now: int,
        added_activities: Sequence[DemoActivity],
        deep_link_return_url: str | None,
    ) -> dict[str, Any]:
        if course_module_id == DEEP_LINKING_COURSE_MODULE_ID:
            if not person.is_instructor:
                # Moodle offers the activity chooser to editing teachers only.
                raise DemoPlatformError(
                    f"{person.name} cannot add activities to the course: only the instructor can.",
                    hint="Go back to the demo platform's home page and add the activity as the "
                    "instructor.",
                )
            if deep_link_return_url is None:
                raise DemoPlatformError(
                    "The demo platform has no return address for this deep linking request.",
                    hint="Start again from the demo platform's home page.",
                )
            return self.deep_linking_claims(person, nonce, now, deep_link_return_url)
        activity = self.find_activity(course_module_id, added_activities)
        if activity is None:
            raise DemoPlatformError(
                f"The course has no activity with course module id {course_module_id!r}.",
                hint="Go back to the demo platform's home page and launch one of its activities.",
            )
        return self.id_token_claims(person, nonce, now, activity)

    def deep_linking_claims(
        self, person: DemoPerson, nonce: str, now: int, return_url: str
    ) -> dict[str, Any]:
        """An LtiDeepLinkingRequest (LTI Deep Linking 2.0 §4.4) shaped like Moodle 4.5's: no
        resource link, no ``data``, the AGS claim without a line item, and Moodle's settings."""
        claims = self.id_token_claims(person, nonce, now)
        claims[LTI_CLAIM + "message_type"] = "LtiDeepLinkingRequest"
        del claims[LTI_CLAIM + "resource_link"]
        claims.pop(BASIC_OUTCOME_CLAIM, None)
        claims[LTI_CLAIM + "launch_presentation"] = {"locale": person.locale}
        claims[AGS_ENDPOINT_CLAIM].pop("lineitem", None)
        for name in list(claims[LTI_CLAIM + "custom"]):
            if name not in ("course_title", "user_sis", "context_memberships_url"):
                del claims[LTI_CLAIM + "custom"][name]  # the activity's own: there is none yet
        claims[DEEP_LINKING_SETTINGS_CLAIM] = {
            "accept_copy_advice": False,
            "accept_multiple": True,
            "accept_presentation_document_targets": ["frame", "iframe", "window"],
            "accept_types": ["ltiResourceLink"],
            "accept_unsigned": False,
            "auto_create": False,
            "can_confirm": False,
            "deep_link_return_url": return_url,
            "text": "",
            "title": "",
        }
        return claims

    def id_token_claims(
        self, person: DemoPerson, nonce: str, now: int, activity: DemoActivity | None = None
    ) -> dict[str, Any]:
        """An LtiResourceLinkRequest (LTI Core 1.3 §5) shaped like Moodle 4.5's."""
        course = self.course
        activity = activity or self.activity
        services = f"{self.issuer}/services"
        line_items = f"{services}/{course.id}/lineitems?type_id={self.deployment_id}"
        ags_endpoint: dict[str, Any] = {"lineitems": line_items, "scope": list(AGS_SCOPES)}
        if activity.line_item_id is not None:
            ags_endpoint["lineitem"] = (
                f"{services}/{course.id}/lineitems/{activity.line_item_id}/lineitem"
                f"?type_id={self.deployment_id}"
            )
        memberships = (
            f"{services}/CourseSection/{course.id}/bindings/{self.deployment_id}/memberships"
        )
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": person.user_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME_SECONDS,
            "nonce": nonce,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "name": person.name,
            "email": person.email,
            LTI_CLAIM + "version": "1.3.0",
            LTI_CLAIM + "message_type": "LtiResourceLinkRequest",
            LTI_CLAIM + "deployment_id": self.deployment_id,
            LTI_CLAIM + "target_link_uri": self.tool_launch_url,
            LTI_CLAIM + "resource_link": {
                "id": activity.resource_link_id,
                "title": activity.title,
                "description": activity.description,
            },
            LTI_CLAIM + "context": {
                "id": course.id,
                "label": course.label,
                "title": course.title,
                "type": ["CourseSection"],
            },
            LTI_CLAIM + "roles": list(person.roles),
            LTI_CLAIM + "custom": {
                **activity.custom,
                **person.custom,
                "course_title": course.title,
                "user_sis": f"SIS-{person.username}",
                "context_memberships_url": memberships,
            },
            LTI_CLAIM + "ext": {"lms": "moodle-2", "user_username": person.username},
            LTI_CLAIM + "lis": {
                "course_section_sourcedid": course.label,
                "person_sourcedid": f"SIS-{person.username}",
            },
            LTI_CLAIM + "launch_presentation": {
                "document_target": "window",
                "locale": person.locale,
                "return_url": f"{self.issuer}/",
            },
            LTI_CLAIM + "tool_platform": {
                "guid": "adaptive-lti-demo",
                "name": "demoplatform",
                "description": "adaptive-lti demo platform (Moodle 4.5 payloads)",
                "product_family_code": "moodle",
                "version": "2024100700",
            },
            AGS_ENDPOINT_CLAIM: ags_endpoint,
            NRPS_CLAIM: {
                "context_memberships_url": memberships,
                "service_versions": ["1.0", "2.0"],
            },
        }
        if not person.is_instructor:
            # Moodle's legacy LTI 1.1 outcomes claim, sent to gradable learners.
            claims[BASIC_OUTCOME_CLAIM] = {
                "lis_outcome_service_url": f"{services}/outcomes",
                "lis_result_sourcedid": json.dumps(
                    {
                        "data": {
                            "instanceid": activity.resource_link_id,
                            "userid": person.user_id,
                            "typeid": self.deployment_id,
                            "launchid": secrets.randbelow(10**8),
                        },
                        "hash": "demo",
                    },
                    separators=(",", ":"),
                ),
            }
        return claims

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWS with the platform key's ``kid`` (Security Framework §5.1.3, §6.1)."""
        return jwt.encode(
            dict(claims), self.key.private_key, algorithm="RS256", headers={"kid": self.key.kid}
        )
