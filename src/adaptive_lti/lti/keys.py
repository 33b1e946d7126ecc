"""The tool's RSA signing keys: created on first start, rotated, retired, published as a JWKS.

The tool signs with the newest active key (client-credentials assertions, deep-linking
responses) and publishes every active key at ``/.well-known/jwks.json`` so platforms that cached
the old key keep verifying until ``adaptive-lti keys retire KID`` (Security Framework §6.3).
Private keys live in the database, or in 0600 files under ``Settings.key_dir`` when it is set;
they never appear in a log, a repr or a CLI listing. Parsed key objects are cached per PEM, so a
request never re-parses a PEM.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import AdaptiveLtiError
from adaptive_lti.core.lti import ToolKeyInfo
from adaptive_lti.db import tool_keys_repo, tool_secret_repo
from adaptive_lti.db.session import transaction
from adaptive_lti.settings import Settings

log = logging.getLogger("adaptive_lti.lti.keys")

KEY_SIZE_BITS = 2048
SIGNING_ALGORITHM = "RS256"
# The generated session secret's file under key_dir, and its size (64 URL-safe characters).
SECRET_FILE_NAME = "tool-session-secret"  # noqa: S105 - a file name, not a secret
GENERATED_SECRET_BYTES = 48


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def __repr__(self) -> str:  # the private key must never reach a log
        return f"SigningKey(kid={self.kid!r})"


def _thumbprint_kid(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: a kid derived from the key, stable and collision free."""
    canonical = json.dumps(
        {"e": public_jwk["e"], "kty": "RSA", "n": public_jwk["n"]}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def generate_key_pair() -> tuple[str, str, dict[str, Any]]:
    """A new RSA key: (kid, private PEM, public JWK with kid/alg/use)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE_BITS)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    kid = _thumbprint_kid(public_jwk)
    public_jwk.update({"kid": kid, "alg": SIGNING_ALGORITHM, "use": "sig"})
    return kid, pem, public_jwk


@lru_cache(maxsize=32)
def _load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AdaptiveLtiError(
            "A tool key is not an RSA key.", hint="Run 'adaptive-lti keys rotate'."
        )
    return key


def _write_private_key_file(key_dir: Path, kid: str, pem: str) -> Path:
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = key_dir / f"{kid}.pem"
    # O_EXCL: never overwrite a key; 0600 from creation, not chmod afterwards.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(pem)
    return path


def _read_private_key(stored: tool_keys_repo.StoredToolKey) -> str:
    if stored.private_key_path:
        try:
            return Path(stored.private_key_path).read_text(encoding="ascii")
        except OSError as error:
            raise AdaptiveLtiError(
                f"The private key file of tool key {stored.info.kid} cannot be read ({error.strerror}).",
                hint="Restore the file, or run 'adaptive-lti keys rotate' and retire the old key.",
            ) from None
    return stored.info.private_key_pem


def create_key(session: Session, settings: Settings, now: datetime) -> ToolKeyInfo:
    """Make and store a new active signing key (``keys rotate``; first start)."""
    kid, pem, public_jwk = generate_key_pair()
    if settings.key_dir is not None:
        path = _write_private_key_file(settings.key_dir, kid, pem)
        tool_keys_repo.add_tool_key(
            session, kid=kid, public_jwk=public_jwk, now=now, private_key_path=str(path)
        )
    else:
        tool_keys_repo.add_tool_key(
            session, kid=kid, public_jwk=public_jwk, now=now, private_key_pem=pem
        )
    log.info("created tool signing key kid=%s", kid)
    return ToolKeyInfo(kid=kid, public_jwk=public_jwk, active=True, created_at=now, retired_at=None)


def ensure_signing_key(session: Session, settings: Settings, now: datetime) -> None:
    """Create the first key pair when the tool has none (first start)."""
    if not tool_keys_repo.list_tool_keys(session, active_only=True):
        create_key(session, settings, now)


def ensure_signing_key_on_start(
    session_factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    """First start: make the key pair before the first request needs it. A database without
    the tables yet is left alone (the first request that needs a key will make it)."""
    try:
        with transaction(session_factory) as session:
            ensure_signing_key(session, settings, now)
    except (OperationalError, ProgrammingError) as error:
        reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
        log.warning(
            "tool signing key not checked at start (%s); run 'adaptive-lti db upgrade'", reason
        )


def rotate(session: Session, settings: Settings, now: datetime) -> ToolKeyInfo:
    """A new signing key; the old ones stay published until retired."""
    return create_key(session, settings, now)


def retire(session: Session, kid: str, now: datetime) -> None:
    """Stop publishing and using a key (refused for the last active key)."""
    tool_keys_repo.retire_tool_key(session, kid, now)


def list_keys(session: Session) -> list[ToolKeyInfo]:
    """Every key, without its private part."""
    return [
        ToolKeyInfo(
            kid=stored.info.kid,
            public_jwk=stored.info.public_jwk,
            active=stored.info.active,
            created_at=stored.info.created_at,
            retired_at=stored.info.retired_at,
        )
        for stored in tool_keys_repo.list_tool_keys(session)
    ]


def published_jwks(session: Session) -> dict[str, list[dict[str, Any]]]:
    """The JWKS a platform fetches: every active public key with kid, alg and use."""
    return {
        "keys": [
            dict(stored.info.public_jwk)
            for stored in tool_keys_repo.list_tool_keys(session, active_only=True)
        ]
    }


def signing_key(session: Session) -> SigningKey:
    """The newest active key, parsed once per process."""
    active = tool_keys_repo.list_tool_keys(session, active_only=True)
    if not active:
        raise AdaptiveLtiError(
            "The tool has no active signing key.",
            hint="Run 'adaptive-lti keys rotate' to create one.",
        )
    newest = active[-1]
    return SigningKey(newest.info.kid, _load_private_key(_read_private_key(newest)))


def private_key_pem(session: Session, kid: str) -> str:
    """The PEM of one key, for pylti1p3's Registration (lti/toolconf.py) only."""
    for stored in tool_keys_repo.list_tool_keys(session, active_only=True):
        if stored.info.kid == kid:
            return _read_private_key(stored)
    raise AdaptiveLtiError(f"There is no active tool key with kid {kid!r}.")


def _secret_in_key_dir(key_dir: Path) -> str:
    """Read the secret file, or make it (0600 from creation; O_EXCL, so a process that starts at
    the same moment reads the one the first process wrote)."""
    path = key_dir / SECRET_FILE_NAME
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(GENERATED_SECRET_BYTES) + "\n")
        log.info("created the tool's session secret in %s", path)
    try:
        secret = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise AdaptiveLtiError(
            f"The tool's session secret file {path} cannot be read ({error}).",
            hint="Restore the file, or delete it (every tool session then ends) and restart.",
        ) from None
    if len(secret) < 32:
        raise AdaptiveLtiError(
            f"The tool's session secret file {path} holds no secret of 32 characters or more.",
            hint="Delete the file (every tool session then ends) and restart: the tool makes a "
            "new one.",
        )
    return secret


def tool_secret(session: Session, settings: Settings, now: datetime | None = None) -> str:
    """The secret that signs the tool's sessions: ``ADAPTIVE_LTI_SECRET_KEY`` when configured,
    else the tool's own, made on first start and kept beside its keys (a 0600 file in key_dir
    when it is set, else the database), so every process sharing them agrees."""
    if settings.secret_key:
        return settings.secret_key
    if settings.key_dir is not None:
        return _secret_in_key_dir(settings.key_dir)
    stored = tool_secret_repo.stored_secret(session)
    if stored is not None:
        return stored
    when = now or datetime.now(UTC)
    kept = tool_secret_repo.store_secret_once(
        session, secrets.token_urlsafe(GENERATED_SECRET_BYTES), when
    )
    log.info("created the tool's session secret (kept in the database)")
    return kept


def settings_with_secret(session_factory: sessionmaker[Session], settings: Settings) -> Settings:
    """``settings`` with ``secret_key`` filled in by ``tool_secret`` (the web app calls it once)."""
    if settings.secret_key:
        return settings
    with transaction(session_factory) as session:
        secret = tool_secret(session, settings)
    return settings.model_copy(update={"secret_key": secret})
