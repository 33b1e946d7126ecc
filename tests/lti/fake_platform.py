"""A Moodle-shaped fake of the platform side of LTI Advantage services, for httpx.MockTransport.

``FakePlatform`` answers the token endpoint (client-credentials with a JWT assertion it
verifies, JSON served as ``text/html`` as Moodle's token.php does), AGS line items, scores and
results (URLs with ``?type_id=1``), and NRPS memberships with ``Link: rel="next"`` paging. It
records what it accepted, so tests can assert each score arrived exactly once, and it can be
told to fail: 5xx, timeouts, expired tokens, a stripped Authorization header, users Moodle will
not grade. Thread safe: two delivery workers may call it at once.

Payload shapes come from a real Moodle 4.5 (see the project's Moodle notes); reuse this class in
journey and end-to-end tests through ``FakePlatform.transport()``.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import ActivityProgress, GradingProgress, LineItemSpec, Score
from adaptive_lti.db import registrations_repo
from adaptive_lti.lti import keys
from adaptive_lti.lti.ags import AgsClient
from adaptive_lti.lti.nrps import NrpsClient
from adaptive_lti.lti.service_http import new_http_client
from adaptive_lti.lti.service_token import ServiceTokenProvider
from adaptive_lti.services import grades

ISSUER = "https://moodle.example.edu"
CLIENT_ID = "Xc7CLIENTIDx9"
TOKEN_URL = f"{ISSUER}/mod/lti/token.php"
LINEITEMS_URL = f"{ISSUER}/mod/lti/services.php/2/lineitems?type_id=1"
LINEITEM_URL = f"{ISSUER}/mod/lti/services.php/2/lineitems/2/lineitem?type_id=1"
MEMBERSHIPS_URL = f"{ISSUER}/mod/lti/services.php/CourseSection/2/bindings/1/memberships"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"

# The members Moodle 4.5 listed for the course "LTI 101" (short roles, ext_user_username).
MOODLE_MEMBERS: list[dict[str, Any]] = [
    {
        "email": "student1@example.com",
        "ext_user_username": "student1",
        "family_name": "One",
        "given_name": "Student",
        "lis_person_sourcedid": "SIS-student1",
        "name": "Student One",
        "roles": ["Learner"],
        "status": "Active",
        "user_id": "3",
    },
    {
        "email": "teacher1@example.com",
        "ext_user_username": "teacher1",
        "family_name": "One",
        "given_name": "Teacher",
        "lis_person_sourcedid": "SIS-teacher1",
        "name": "Teacher One",
        "roles": ["Instructor"],
        "status": "Active",
        "user_id": "4",
    },
]

# Moodle's line items for the course: the activity's own column and one a tool created.
MOODLE_LINE_ITEMS: list[dict[str, Any]] = [
    {
        "id": LINEITEM_URL,
        "label": "Harness activity",
        "ltiLinkId": "1",
        "resourceId": "",
        "resourceLinkId": "1",
        "scoreMaximum": 100,
        "tag": "",
    },
    {
        "id": f"{ISSUER}/mod/lti/services.php/2/lineitems/3/lineitem?type_id=1",
        "label": "Extra column from tool",
        "resourceId": "extra-1",
        "scoreMaximum": 5,
        "tag": "extra",
    },
]


@dataclass
class IssuedToken:
    scopes: frozenset[str]
    expires_at: datetime


@dataclass
class ReceivedScore:
    lineitem_url: str
    payload: dict[str, Any]


@dataclass
class FakePlatform:
    """The platform. ``tool_public_key`` verifies the tool's client assertions."""

    tool_public_key: rsa.RSAPublicKey
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    token_lifetime: int = 3600
    # User ids Moodle refuses to grade (teachers, people not enrolled): their scores get 400.
    not_gradable: set[str] = field(default_factory=lambda: {"4"})
    # What the next score POSTs meet, in order: "500", "503", "timeout", "connect", "expire"
    # (the bearer token is expired just before the call), "429".
    score_faults: deque[str] = field(default_factory=deque)
    token_faults: deque[str] = field(default_factory=deque)
    # A web server in front of PHP that drops the Authorization header (CGIPassAuth off).
    strip_authorization: bool = False
    # Sleep this long inside each score POST (to make concurrent deliveries overlap).
    score_delay: float = 0.0
    members: list[dict[str, Any]] = field(default_factory=lambda: [dict(m) for m in MOODLE_MEMBERS])
    members_page_size: int = 0  # 0: one page
    line_items: list[dict[str, Any]] = field(
        default_factory=lambda: [dict(item) for item in MOODLE_LINE_ITEMS]
    )

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.tokens: dict[str, IssuedToken] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.seen_jtis: set[str] = set()
        self.received_scores: list[ReceivedScore] = []
        self.score_posts = 0
        self.requests: list[httpx.Request] = []
        self.created_line_items: list[dict[str, Any]] = []
        self._next_line_item = 10

    # --- test helpers -------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = self.clock() - timedelta(seconds=1)

    def scores_for(self, user_id: str) -> list[dict[str, Any]]:
        return [s.payload for s in self.received_scores if s.payload.get("userId") == user_id]

    # --- dispatch -----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        url = str(request.url)
        path = request.url.path
        if url == TOKEN_URL and request.method == "POST":
            return self._token(request)
        if self.strip_authorization and "authorization" in request.headers:
            # What PHP sees behind Apache without CGIPassAuth: no Authorization header.
            headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
            request = httpx.Request(
                request.method, request.url, headers=headers, content=request.content
            )
        if path.startswith("/mod/lti/services.php/CourseSection/"):
            return self._memberships(request)
        if path.endswith("/lineitem/scores"):
            return self._score(request)
        if path.endswith("/lineitem/results"):
            return self._results(request)
        if path.endswith("/lineitems"):
            return self._lineitems(request)
        return httpx.Response(404, text="No handler found for " + url)

    def _bearer(self, request: httpx.Request, scope: str) -> httpx.Response | None:
        """None when the request carries a valid token for ``scope``; else Moodle's 401."""
        header = request.headers.get("authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        with self._lock:
            issued = self.tokens.get(token)
        if issued is None or issued.expires_at <= self.clock() or scope not in issued.scopes:
            return httpx.Response(401, text="Unauthorized")
        return None

    # --- token endpoint (Security Framework §4.1) -----------------------------------------

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        with self._lock:
            self.token_requests.append(form)
            fault = self.token_faults.popleft() if self.token_faults else None
        if fault == "500":
            return httpx.Response(500, text="Internal error")
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return self._html_json(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                self.tool_public_key,
                algorithms=["RS256"],
                audience=TOKEN_URL,
                # The platform's own clock decides expiry (tests move it by hand).
                options={
                    "require": ["exp", "iat", "jti", "iss", "sub", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            return self._html_json(400, {"error": "invalid_client", "detail": str(error)})
        now = self.clock().timestamp()
        if not claims["iat"] - 5 <= now < claims["exp"]:
            return self._html_json(400, {"error": "invalid_client", "detail": "assertion expired"})
        if claims["iss"] != CLIENT_ID or claims["sub"] != CLIENT_ID:
            return self._html_json(400, {"error": "invalid_client"})
        with self._lock:
            if claims["jti"] in self.seen_jtis:
                return self._html_json(400, {"error": "invalid_request", "detail": "jti reused"})
            self.seen_jtis.add(claims["jti"])
            granted = frozenset(form.get("scope", "").split()) & frozenset(
                [*AGS_SCOPES, NRPS_SCOPE]
            )
            token = uuid.uuid4().hex
            self.tokens[token] = IssuedToken(
                granted, self.clock() + timedelta(seconds=self.token_lifetime)
            )
        return self._html_json(
            200,
            {
                "access_token": token,
                "expires_in": self.token_lifetime,
                "scope": " ".join(sorted(granted)),
                "token_type": "Bearer",
            },
        )

    @staticmethod
    def _html_json(status: int, body: dict[str, Any]) -> httpx.Response:
        # Moodle's token.php sends its JSON with Content-Type text/html.
        return httpx.Response(
            status,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )

    # --- AGS ------------------------------------------------------------------------------

    def _lineitems(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            refused = self._bearer(request, AGS_SCOPES[1]) and self._bearer(request, AGS_SCOPES[0])
            if refused is not None:
                return refused
            params = request.url.params
            with self._lock:
                items = [
                    item
                    for item in self.line_items
                    if (
                        "resource_id" not in params
                        or item.get("resourceId", "") == params["resource_id"]
                    )
                    and ("tag" not in params or item.get("tag", "") == params["tag"])
                ]
            return httpx.Response(
                200,
                json=items,
                headers={"Content-Type": "application/vnd.ims.lis.v2.lineitemcontainer+json"},
            )
        if request.method == "POST":
            refused = self._bearer(request, AGS_SCOPES[0])
            if refused is not None:
                return refused
            if request.headers.get("content-type") != "application/vnd.ims.lis.v2.lineitem+json":
                return httpx.Response(400, text="Wrong content type")
            body = json.loads(request.content)
            with self._lock:
                number = self._next_line_item
                self._next_line_item += 1
                item = {
                    **body,
                    "id": f"{ISSUER}/mod/lti/services.php/2/lineitems/{number}/lineitem?type_id=1",
                }
                self.line_items.append(item)
                self.created_line_items.append(item)
            return httpx.Response(
                201,
                json=item,
                headers={"Content-Type": "application/vnd.ims.lis.v2.lineitem+json"},
            )
        return httpx.Response(405)

    def _lineitem_of(self, request: httpx.Request, endpoint: str) -> str:
        path = request.url.path[: -len("/" + endpoint)]
        query = request.url.query.decode()
        type_id = "type_id=" + parse_qs(query).get("type_id", [""])[0]
        return f"{request.url.scheme}://{request.url.host}{path}?{type_id}"

    def _score(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.score_posts += 1
            fault = self.score_faults.popleft() if self.score_faults else None
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault in ("500", "502", "503", "429"):
            return httpx.Response(int(fault), text="Service unavailable, try later")
        if fault == "expire":
            self.expire_tokens()
        refused = self._bearer(request, AGS_SCOPES[3])
        if refused is not None:
            return refused
        if request.headers.get("content-type") != "application/vnd.ims.lis.v1.score+json":
            return httpx.Response(400, text="Wrong content type")
        if request.url.params.get("type_id") != "1":
            return httpx.Response(404, text="No type_id: Moodle needs the query kept")
        payload = json.loads(request.content)
        if str(payload.get("userId")) in self.not_gradable:
            return httpx.Response(400, text="Incorrect score received")
        if self.score_delay:
            time.sleep(self.score_delay)
        with self._lock:
            self.received_scores.append(
                ReceivedScore(self._lineitem_of(request, "scores"), payload)
            )
        return httpx.Response(200, text="")

    def _results(self, request: httpx.Request) -> httpx.Response:
        refused = self._bearer(request, AGS_SCOPES[2])
        if refused is not None:
            return refused
        lineitem = self._lineitem_of(request, "results")
        maximum = next(
            (item["scoreMaximum"] for item in self.line_items if item["id"] == lineitem), 100
        )
        latest: dict[str, dict[str, Any]] = {}
        for score in self.received_scores:
            if score.lineitem_url == lineitem:
                latest[str(score.payload["userId"])] = score.payload
        wanted = request.url.params.get("user_id")
        results = []
        for user, payload in sorted(latest.items()):
            if wanted and user != wanted:
                continue
            given, most = payload.get("scoreGiven"), payload.get("scoreMaximum")
            results.append(
                {
                    "id": f"{lineitem.split('?')[0]}/results?type_id=1&user_id={user}",
                    "userId": user,
                    "scoreOf": lineitem,
                    # Moodle rescales to the line item's maximum: 7.5/10 on a 100 item is 75.
                    "resultScore": None if given is None else given / most * maximum,
                    "resultMaximum": maximum,
                    "comment": payload.get("comment"),
                    "timestamp": payload.get("timestamp"),
                }
            )
        return httpx.Response(
            200,
            json=results,
            headers={"Content-Type": "application/vnd.ims.lis.v2.resultcontainer+json"},
        )

    # --- NRPS -----------------------------------------------------------------------------

    def _memberships(self, request: httpx.Request) -> httpx.Response:
        refused = self._bearer(request, NRPS_SCOPE)
        if refused is not None:
            return refused
        if request.headers.get("accept") != (
            "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
        ):
            return httpx.Response(406, text="Not acceptable")
        size = self.members_page_size or len(self.members) or 1
        # Page links use mixed case on purpose: a client must follow them exactly as given.
        page = int(request.url.params.get("PageNo", "1"))
        if page > 1 and str(request.url) != self._page_url(page):
            return httpx.Response(404, text="Unknown page URL " + str(request.url))
        chunk = self.members[(page - 1) * size : page * size]
        headers = {"Content-Type": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"}
        if page * size < len(self.members):
            headers["Link"] = f'<{self._page_url(page + 1)}>; rel="next"'
        body = {
            "id": MEMBERSHIPS_URL,
            "context": {"id": "2", "label": "LTI101", "title": "LTI 101"},
            "members": chunk,
        }
        return httpx.Response(200, json=body, headers=headers)

    @staticmethod
    def _page_url(page: int) -> str:
        return f"{MEMBERSHIPS_URL}?PageNo={page}&Limit=Mixed"


# --- wiring for tests ------------------------------------------------------------------------


@functools.cache
def tool_private_key() -> rsa.RSAPrivateKey:
    """One RSA key for the tool in every test of the run (key generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def tool_signing_key(_session: Session | None = None) -> keys.SigningKey:
    return keys.SigningKey(kid="tool-test-kid", private_key=tool_private_key())


def add_fake_registration(session: Session, now: datetime) -> int:
    """Register the fake platform with the tool (deployment "1"); returns the registration id."""
    info = registrations_repo.add_registration(
        session,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        auth_login_url=f"{ISSUER}/mod/lti/auth.php",
        auth_token_url=TOKEN_URL,
        jwks_url=f"{ISSUER}/mod/lti/certs.php",
        now=now,
        deployment_ids=["1"],
    )
    return info.id


def queue_activity_score(
    session: Session, registration_id: int, *, user_id: str, score_given: float, now: datetime
) -> None:
    """Queue a completed, fully graded score out of 10 for ``user_id`` on the activity's own
    column ("Harness activity", its line item URL known from the launch)."""
    grades.queue_score(
        session,
        registration_id=registration_id,
        line_item=LineItemSpec(
            label="Harness activity",
            score_maximum=100,
            granted_scopes=tuple(AGS_SCOPES),
            lineitem_url=LINEITEM_URL,
        ),
        score=Score(
            user_id=user_id,
            activity_progress=ActivityProgress.completed,
            grading_progress=GradingProgress.fully_graded,
            timestamp=now,
            score_given=score_given,
            score_maximum=10,
        ),
        now=now,
    )


def new_platform(**options: Any) -> FakePlatform:
    return FakePlatform(tool_public_key=tool_private_key().public_key(), **options)


def service_clients(
    session_factory: sessionmaker[Session],
    platform: FakePlatform,
    clock: Callable[[], datetime] | None = None,
) -> tuple[AgsClient, NrpsClient, ServiceTokenProvider]:
    """The tool's AGS and NRPS clients talking to ``platform`` through a MockTransport."""
    http = new_http_client(platform.transport())
    tokens = ServiceTokenProvider(
        session_factory,
        http,
        signing_key=tool_signing_key,
        clock=clock or platform.clock,
    )
    return AgsClient(tokens, http), NrpsClient(tokens, http), tokens


class FakeClock:
    """A clock tests move by hand; the tool and the platform share it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 22, 11, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
