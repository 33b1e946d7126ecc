"""pylti1p3's tool configuration, read from the database.

The launch itself does not go through pylti1p3 (see ``lti/validation.py``), but its service
clients do: ``ServiceConnector`` (AGS, NRPS access tokens) and ``DeepLink`` (the signed
deep-linking response) take a pylti1p3 ``Registration`` holding the platform's endpoints and the
tool's private key. ``DatabaseToolConf`` builds those from the registration rows and the tool's
newest active signing key, so every process sees the same configuration.

Registrations are keyed by (issuer, client_id): pylti1p3's "one issuer, many client ids" mode.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm
from pylti1p3.deployment import Deployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy.orm import Session

from adaptive_lti.core.lti import PlatformRegistrationInfo
from adaptive_lti.db import registrations_repo
from adaptive_lti.lti import keys
from adaptive_lti.lti.adapters import FastAPIRequest


def _public_pem(public_jwk: dict[str, Any]) -> str:
    public_key = RSAAlgorithm.from_jwk(dict(public_jwk))
    return public_key.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class DatabaseToolConf(ToolConfAbstract[FastAPIRequest]):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session
        self.issuers_relation_types = {}

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def _registration(self, info: PlatformRegistrationInfo) -> Registration:
        registration = Registration()
        registration.set_issuer(info.issuer)
        registration.set_client_id(info.client_id)
        registration.set_auth_login_url(info.auth_login_url)
        registration.set_auth_token_url(info.auth_token_url)
        if info.auth_token_audience:
            registration.set_auth_audience(info.auth_token_audience)
        registration.set_key_set_url(info.jwks_url)
        registration.set_key_set(dict(info.static_jwks) if info.static_jwks else None)  # type: ignore[arg-type]
        signing = keys.signing_key(self._session)
        public_jwk = next(
            key.public_jwk for key in keys.list_keys(self._session) if key.kid == signing.kid
        )
        registration.set_tool_private_key(keys.private_key_pem(self._session, signing.kid))
        registration.set_tool_public_key(_public_pem(dict(public_jwk)))
        return registration

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        found = registrations_repo.registrations_for_issuer(self._session, iss)
        if len(found) != 1:
            return None  # type: ignore[return-value]  # pylti1p3 checks for a falsy result
        return self._registration(found[0])

    def find_registration_by_params(
        self, iss: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Registration:
        if client_id is None:
            return self.find_registration_by_issuer(iss)
        info = registrations_repo.find_registration(self._session, iss, client_id)
        if info is None:
            return None  # type: ignore[return-value]
        return self._registration(info)

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        found = registrations_repo.registrations_for_issuer(self._session, iss)
        if len(found) != 1:
            return None
        return self._deployment(found[0].id, deployment_id)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        info = registrations_repo.find_registration(self._session, iss, client_id)
        if info is None:
            return None
        return self._deployment(info.id, deployment_id)

    def _deployment(self, registration_id: int, deployment_id: str) -> Deployment | None:
        found = registrations_repo.find_deployment(self._session, registration_id, deployment_id)
        if found is None or not found.active:
            return None
        return Deployment().set_deployment_id(found.deployment_id)
