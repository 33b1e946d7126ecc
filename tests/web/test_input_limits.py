"""Input the databases refuse (NUL, lone surrogates, over-long values) gets a clear 4xx on both
SQLite and PostgreSQL, before any query: through the HTTP app, login, launch and forms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.db import migrate
from adaptive_lti.db.session import make_engine, make_session_factory
from tests.lti.harness import LtiHarness, harness
from tests.lti.scripted_platform import INSTRUCTOR, LTI

Claims = dict[str, Any]


@pytest.fixture
def h(session_factory: sessionmaker[Session], db_url: str) -> Iterator[LtiHarness]:
    with harness(session_factory, db_url) as lti:
        yield lti


@pytest.fixture
def own_database_h(new_database_url: Callable[[str], str], backend: str) -> Iterator[LtiHarness]:
    """A harness on a database of its own, with a connection per session as in production: the
    fuzzers run dozens of requests in one test, and sessions sharing the test's rolled-back
    connection would meet each other's savepoints (a refused launch writes in a second
    transaction), which no real request can."""
    url = new_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with harness(make_session_factory(engine), url, isolate=False) as lti:
            yield lti
    finally:
        engine.dispose()


def _assert_clear_refusal(response: Any, *words: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    for word in words:
        assert word in response.text, response.text


@pytest.mark.parametrize("field", ["login_hint", "lti_message_hint", "iss", "client_id"])
def test_nul_in_a_login_parameter_is_a_clear_400(h: LtiHarness, field: str) -> None:
    value = h.login_params()[field] + "\x00b"
    before = h.checksums()
    for method in ("GET", "POST"):
        response = h.login(method, **{field: value})
        _assert_clear_refusal(response, "NUL character", field)
    assert h.checksums() == before


def test_nul_in_the_login_query_string_as_sent_by_a_browser(h: LtiHarness) -> None:
    query = "&".join(f"{k}={v}" for k, v in h.login_params(login_hint="3").items())
    response = h.client.get(f"/lti/login?{query.replace('login_hint=3', 'login_hint=a%00b')}")
    _assert_clear_refusal(response, "NUL character", "login_hint")


def test_a_lone_surrogate_or_broken_utf8_is_refused(h: LtiHarness) -> None:
    query = "&".join(f"{k}={v}" for k, v in h.login_params().items())
    for bad in ("%ED%A0%80", "%FF", "%C0%80"):
        response = h.client.get(f"/lti/login?{query}&login_hint=a{bad}")
        _assert_clear_refusal(response, "not valid UTF-8", "login_hint")


def test_an_over_long_deployment_hint_is_refused_with_its_limit(h: LtiHarness) -> None:
    response = h.login(lti_deployment_id="d" * 256)
    _assert_clear_refusal(response, "at most 255", "lti_deployment_id")
    assert h.login(lti_deployment_id="d" * 255).status_code in {302, 400, 403}


def test_nul_in_a_path_parameter_and_a_header_is_refused(h: LtiHarness) -> None:
    _assert_clear_refusal(h.client.get("/lti/teaching/learners/1%00"), "NUL character")
    response = h.client.get("/lti/session", headers={"X-Tool-Session": "a\x00b"})
    _assert_clear_refusal(response, "NUL character", "x-tool-session", status=400)


def test_nul_in_a_form_field_is_refused(h: LtiHarness) -> None:
    response = h.client.post("/lti/launch", data={"id_token": "a.b.c", "state": "s\x00"})
    _assert_clear_refusal(response, "NUL character", "state")


def test_a_form_body_over_its_limit_is_a_413_saying_the_limit(h: LtiHarness) -> None:
    from adaptive_lti.web.input_limits import MAX_OTHER_BODY_BYTES

    response = h.client.post(
        "/lti/launch",
        content=b"x" * (MAX_OTHER_BODY_BYTES + 1),
        headers={"Content-Type": "text/plain"},
    )
    _assert_clear_refusal(response, "at most 1 MB", status=413)


def test_json_with_a_lone_surrogate_is_refused(h: LtiHarness) -> None:
    response = h.client.post(
        "/lti/launch",
        content=b'{"name": "\\ud800"}',
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    _assert_clear_refusal(response, "lone surrogate")


def _set(path: tuple[str, ...], value: Any) -> Callable[[Claims], None]:
    def mutate(claims: Claims) -> None:
        target = claims
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value

    return mutate


CLAIM_PATHS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "given_name": ("given_name",),
    "email": ("email",),
    "sub": ("sub",),
    "context id": (LTI + "context", "id"),
    "context title": (LTI + "context", "title"),
    "context label": (LTI + "context", "label"),
    "resource link id": (LTI + "resource_link", "id"),
    "resource link title": (LTI + "resource_link", "title"),
    "locale": (LTI + "launch_presentation", "locale"),
    "custom": (LTI + "custom", "x"),
    "deployment id": (LTI + "deployment_id",),
    "iss": ("iss",),
}


@pytest.mark.parametrize("claim", list(CLAIM_PATHS))
@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_unstorable_text_in_a_signed_claim_is_refused(h: LtiHarness, claim: str, bad: str) -> None:
    state, nonce = h.start()
    before = h.checksums()
    claims = h.platform.claims(nonce=nonce, now=h.clock.now, mutate=_set(CLAIM_PATHS[claim], bad))
    response = h.launch(h.platform.sign(claims), state, json=True)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["check"] == "claim text", body
    assert ("NUL" in body["message"]) == ("\x00" in bad)
    assert h.checksums() == before


# The claims whose limit an id_token within its own limit (8,192 characters) can pass.
LONG_CLAIMS = {
    "context id": 255,
    "resource link id": 255,
    "sub": 255,
    "deployment id": 255,
    "locale": 64,
}


def test_names_titles_and_custom_values_over_4096_characters_are_refused() -> None:
    from adaptive_lti.lti.claims import check_claim_lengths

    for claim in ("name", "email", "context title", "context label", "custom"):
        claims: Claims = {}
        _set(CLAIM_PATHS[claim], "x" * 4096)(claims)
        check_claim_lengths(claims)
        _set(CLAIM_PATHS[claim], "x" * 4097)(claims)
        with pytest.raises(LaunchError, match="at most 4,096"):
            check_claim_lengths(claims)


def test_an_over_long_id_token_is_refused_with_its_limit(h: LtiHarness) -> None:
    response = h.client.post("/lti/launch", data={"id_token": "a" * 8193, "state": "s"})
    _assert_clear_refusal(response, "at most 8,192", "id_token")


@pytest.mark.parametrize("claim", list(LONG_CLAIMS))
def test_an_over_long_claim_is_refused_with_its_limit(h: LtiHarness, claim: str) -> None:
    limit = LONG_CLAIMS[claim]
    state, nonce = h.start()
    before = h.checksums()
    claims = h.platform.claims(
        nonce=nonce, now=h.clock.now, mutate=_set(CLAIM_PATHS[claim], "x" * (limit + 1))
    )
    response = h.launch(h.platform.sign(claims), state, json=True)
    assert response.status_code == 400, response.text
    assert f"at most {limit:,}" in response.json()["message"]
    assert h.checksums() == before
    # At the limit it is accepted (a new deployment id is recorded, waiting for an admin).
    ok = h.full_launch(role=INSTRUCTOR, mutate=_set(CLAIM_PATHS[claim], "x" * limit))
    if claim == "deployment id":
        assert ok.status_code == 403 and "not active yet" in ok.text, ok.text
    else:
        assert ok.status_code == 200, ok.text


# The launch fuzzer, on both databases: any text in the launch's strings is either accepted
# (200) or refused with a clear 400; never a 500, and a refusal changes nothing.
FUZZ_TEXT = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF),
    min_size=0,
    max_size=300,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(claim=st.sampled_from(sorted(CLAIM_PATHS)), value=FUZZ_TEXT)
def test_launch_fuzz_never_a_500(own_database_h: LtiHarness, claim: str, value: str) -> None:
    h = own_database_h
    state, nonce = h.start()
    before = h.checksums()
    claims = h.platform.claims(nonce=nonce, now=h.clock.now, mutate=_set(CLAIM_PATHS[claim], value))
    response = h.launch(h.platform.sign(claims), state, json=True)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["message"]
        after = h.checksums()
        if body.get("check") == "deployment registered":
            # By design a signed, unknown deployment id is recorded (inactive) for the admin.
            before.pop("lti_deployment"), after.pop("lti_deployment")
        assert after == before


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    field=st.sampled_from(["login_hint", "lti_message_hint", "lti_deployment_id", "iss"]),
    value=st.binary(min_size=1, max_size=300),
)
def test_login_fuzz_never_a_500(own_database_h: LtiHarness, field: str, value: bytes) -> None:
    h = own_database_h
    from urllib.parse import quote_from_bytes

    params = h.login_params()
    params.pop(field)
    query = "&".join(f"{k}={quote_from_bytes(v.encode())}" for k, v in params.items())
    response = h.client.get(
        f"/lti/login?{query}&{field}={quote_from_bytes(value)}", follow_redirects=False
    )
    assert response.status_code < 500, response.text


def test_long_fields_keep_their_own_limits() -> None:
    from urllib.parse import urlencode

    from adaptive_lti.web.input_limits import InputRefused, check_urlencoded

    # A learner's reflection may be 20,000 characters (journey/page.html), a pasted design 5 MB.
    check_urlencoded("form field", urlencode({"text": "é" * 20_000}).encode())
    with pytest.raises(InputRefused, match="at most 20,000"):
        check_urlencoded("form field", urlencode({"text": "x" * 20_001}).encode())
    with pytest.raises(InputRefused, match="at most 4,096"):
        check_urlencoded("form field", urlencode({"other": "x" * 4097}).encode())


def test_deeply_nested_json_is_a_400_not_a_500(h: LtiHarness) -> None:
    body = b'{"a":' * 500 + b"1" + b"}" * 500
    response = h.client.post(
        "/lti/launch", content=body, headers={"Content-Type": "application/json"}
    )
    _assert_clear_refusal(response, "nested more than 64 levels")
