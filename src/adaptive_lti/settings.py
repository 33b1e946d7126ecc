"""The one settings class. Read from the environment (prefix ``ADAPTIVE_LTI_``) or a ``.env`` file.

Settings are passed as arguments (a FastAPI dependency, a CLI option): no module reads them at
import time, so tests build their own ``Settings`` and nothing global changes under them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that were once defaults or are typed by habit: refused as a configured secret anywhere.
PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "secret", "secret-key", "development"})
MIN_PRODUCTION_SECRET_LENGTH = 32


# An origin as CSP and browsers write it: scheme, host, optional port; nothing else.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class UnknownDeploymentPolicy(StrEnum):
    """What a launch from a deployment the tool has not been told about does."""

    reject = "reject"
    # Record the deployment as inactive and show the admin how to activate it.
    record_inactive = "record-inactive"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ADAPTIVE_LTI_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Environment = Environment.development
    database_url: str = "sqlite:///./adaptive-lti.db"
    # Public origin of the tool, e.g. https://tool.example.org (no trailing slash).
    base_url: str = "http://127.0.0.1:8000"
    # Signs the tool's own session tokens. Unset: the tool makes a random secret on first start
    # and keeps it beside its keys (the database, or key_dir), shared by every process (see
    # lti/keys.py tool_secret). There is no default value: a known secret would let anyone
    # sign an instructor's session.
    secret_key: str | None = None
    # Where generated private keys are written when not kept in the database (mode 0600).
    key_dir: Path | None = None
    unknown_deployment_policy: UnknownDeploymentPolicy = UnknownDeploymentPolicy.record_inactive
    # Clock leeway for exp/iat (seconds) and the oldest iat accepted (seconds).
    clock_leeway_seconds: int = Field(default=5, ge=0, le=120)
    max_token_age_seconds: int = Field(default=600, ge=30)
    # OIDC state/nonce lifetime (seconds) and tool-session lifetime (seconds).
    login_ttl_seconds: int = Field(default=600, ge=30)
    session_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    # Minimum seconds between two forced refetches of one platform's JWKS.
    jwks_refetch_interval_seconds: int = Field(default=60, ge=0)
    # A platform's key set fetch gives up after this many seconds (connect and each read).
    jwks_fetch_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # After a failed fetch the platform's key set URL is left alone this long (each process):
    # launches needing a fetch meanwhile get the 503 page at once, or use the stale cached key.
    jwks_failure_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    # While one launch refetches a platform's keys for an unknown kid, others needing them wait
    # this long for it, then get the 503 page (a hanging platform must not hold every worker
    # thread). With nothing cached yet they wait up to the fetch timeout; with a stale key, not.
    jwks_fetch_wait_seconds: float = Field(default=0.5, ge=0, le=30)
    # Database connections per process (SQLAlchemy pool): kept open, extra ones opened under
    # load, and how long a request waits for one before its 503 page. Size them so that
    # processes x (pool size + max overflow), plus CLI and worker processes, stays below
    # PostgreSQL's max_connections (100 by default).
    db_pool_size: int = Field(default=5, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    log_level: str = "INFO"
    # Mount the built-in demo LTI platform at /demo-platform/ and register it with the tool
    # (``adaptive-lti demo`` turns this on). Anyone who reaches it can launch as an instructor,
    # so production refuses it.
    demo_platform: bool = False
    # The demo platform's private signing key (PEM, mode 0600), made on first start.
    demo_platform_key_file: Path = Path("demo-data/demo-platform-key.pem")
    # Grade passback: each app process delivers queued scores from a background thread. Turn it
    # off when a separate 'adaptive-lti grades deliver' process does the delivering.
    grade_delivery_worker: bool = True
    # Seconds between two delivery passes, and attempts before a score is marked failed.
    grade_delivery_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    grade_delivery_max_attempts: int = Field(default=12, ge=1, le=100)
    # Behind a reverse proxy (deploy/nginx.conf): trust X-Forwarded-Proto/-For from these
    # addresses only (comma-separated IPs or networks, "*" for any; uvicorn's forwarded_allow_ips).
    proxy_headers: bool = True
    forwarded_allow_ips: str = "127.0.0.1"
    # On SIGTERM, seconds that in-flight requests get to finish before they are cut off.
    graceful_shutdown_seconds: int = Field(default=20, ge=1, le=600)
    # LTI Dynamic Registration (/lti/register): off once every platform is registered, so the
    # URL no longer makes the tool call out to addresses anyone can give it.
    dynamic_registration_enabled: bool = True
    # The tool's name as the platform lists it.
    tool_name: str = Field(default="Adaptive learning paths", min_length=1, max_length=100)
    # Registrations made by dynamic registration wait for 'adaptive-lti platform approve ID'
    # before launches are accepted. Unset: required in production, not in development or tests.
    registration_requires_approval: bool | None = None
    # OAuth scopes the tool asks for (the platform turns on only these services): grade passback
    # (AGS line items, scores, results) and the course roster (NRPS).
    registration_scopes: tuple[str, ...] = (
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    )
    # Origins besides the registered platforms' own that may show the tool in a frame (CSP
    # frame-ancestors): Canvas and Blackboard serve course pages from the institution's host,
    # not their issuer's. A JSON list: ["https://school.instructure.com"].
    frame_ancestors: tuple[str, ...] = ()
    # The identity claims asked for (Moodle sends names and email only when they are listed).
    registration_claims: tuple[str, ...] = (
        "iss",
        "sub",
        "name",
        "given_name",
        "family_name",
        "email",
    )

    # Observability. Log lines as JSON objects or as text; unset: JSON in production, text
    # elsewhere. Every line carries the request's correlation id (X-Request-ID).
    log_format: LogFormat | None = None
    # /metrics answers requests with "Authorization: Bearer <token>"; unset, it answers only
    # requests from the loopback interface (127.0.0.1, ::1).
    metrics_token: SecretStr | None = None

    # Test and demo only: the server's clock runs this many seconds ahead (end-to-end tests of a
    # learner who comes back days later: spaced reviews). Production refuses anything but 0.
    clock_offset_seconds: float = 0.0

    @field_validator("secret_key", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        # ADAPTIVE_LTI_SECRET_KEY= (a compose file's empty variable) means "not configured".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.secret_key is None:
            return self._refuse_production_hazards()
        if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                f"ADAPTIVE_LTI_SECRET_KEY is set to the placeholder {self.secret_key!r}, which "
                "anyone can guess: unset it (the tool then makes a random secret of its own) or "
                "set a random value (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if (
            self.environment is Environment.production
            and len(self.secret_key) < MIN_PRODUCTION_SECRET_LENGTH
        ):
            raise ValueError(
                f"ADAPTIVE_LTI_SECRET_KEY must be a random value of at least "
                f"{MIN_PRODUCTION_SECRET_LENGTH} characters in production (for example: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'), or unset, and "
                "the tool makes one of its own"
            )
        return self._refuse_production_hazards()

    def _refuse_production_hazards(self) -> Self:
        if self.environment is Environment.production and self.demo_platform:
            raise ValueError(
                "ADAPTIVE_LTI_DEMO_PLATFORM lets anyone launch as any demo person, instructors "
                "included: it cannot be turned on in production"
            )
        if self.environment is Environment.production and self.clock_offset_seconds:
            raise ValueError(
                "ADAPTIVE_LTI_CLOCK_OFFSET_SECONDS moves the server's clock for tests: it "
                "cannot be set in production"
            )
        return self

    @field_validator("frame_ancestors")
    @classmethod
    def _frame_ancestors_are_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"ADAPTIVE_LTI_FRAME_ANCESTORS: {origin!r} is not an origin; give scheme and "
                    'host (and port) only, e.g. ["https://school.instructure.com"]'
                )
        return origins

    @field_validator("metrics_token")
    @classmethod
    def _refuse_short_metrics_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < 16:
            raise ValueError(
                "ADAPTIVE_LTI_METRICS_TOKEN must be at least 16 characters (for example: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'); leave it unset "
                "to serve /metrics to the loopback interface only"
            )
        return token

    @property
    def approval_required_for_registrations(self) -> bool:
        """Whether dynamic registrations wait for an administrator (see registration_requires_approval)."""
        if self.registration_requires_approval is not None:
            return self.registration_requires_approval
        return self.environment is Environment.production

    @property
    def effective_log_format(self) -> LogFormat:
        """The log format in use (see log_format)."""
        if self.log_format is not None:
            return self.log_format
        return LogFormat.json if self.environment is Environment.production else LogFormat.text

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
