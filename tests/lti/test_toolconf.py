"""pylti1p3's tool configuration read from the database, usable by its service classes."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from sqlalchemy.orm import Session

from adaptive_lti.db import registrations_repo
from adaptive_lti.lti import keys
from adaptive_lti.lti.toolconf import DatabaseToolConf
from tests.lti.harness import tool_settings
from tests.lti.scripted_platform import CLIENT_ID, ISSUER, ScriptedPlatform

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_registration_and_deployments_come_from_the_database(session: Session, db_url: str) -> None:
    keys.ensure_signing_key(session, tool_settings(db_url), NOW)
    registration_info = ScriptedPlatform().register(session, NOW)
    conf = DatabaseToolConf(session)
    assert conf.check_iss_has_many_clients(ISSUER) and not conf.check_iss_has_one_client(ISSUER)
    registration = conf.find_registration_by_params(ISSUER, CLIENT_ID)
    assert registration.get_issuer() == ISSUER and registration.get_client_id() == CLIENT_ID
    assert registration.get_auth_token_url() == ISSUER + "/mod/lti/token.php"
    assert registration.get_key_set_url() == ISSUER + "/mod/lti/certs.php"
    # pylti1p3 derives the kid from the public key: it is the one the tool publishes.
    assert registration.get_kid() == keys.signing_key(session).kid
    assert conf.find_registration_by_params(ISSUER, "other") is None
    assert conf.find_registration_by_issuer(ISSUER) is not None
    assert conf.find_deployment_by_params(ISSUER, "1", CLIENT_ID) is not None
    assert conf.find_deployment(ISSUER, "1") is not None
    assert conf.find_deployment_by_params(ISSUER, "2", CLIENT_ID) is None
    registrations_repo.set_deployment_active(
        session, registration_info.id, "1", active=False, now=NOW
    )
    assert conf.find_deployment_by_params(ISSUER, "1", CLIENT_ID) is None


def test_pylti1p3_deep_link_response_is_signed_with_the_tools_key(
    session: Session, db_url: str
) -> None:
    keys.ensure_signing_key(session, tool_settings(db_url), NOW)
    ScriptedPlatform().register(session, NOW)
    registration = DatabaseToolConf(session).find_registration_by_params(ISSUER, CLIENT_ID)
    settings = {
        "deep_link_return_url": ISSUER + "/mod/lti/contentitem_return.php",
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe"],
        "data": "opaque",
    }
    token = DeepLink(registration, "1", settings).get_response_jwt(
        [DeepLinkResource().set_url("http://testserver/lti/launch").set_title("Path")]
    )
    jwk = keys.published_jwks(session)["keys"][0]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=ISSUER)
    assert claims["iss"] == CLIENT_ID
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque"
