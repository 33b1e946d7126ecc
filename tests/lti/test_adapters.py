"""Each method of the FastAPI adapters for pylti1p3's request, cookie and redirect interfaces."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from pylti1p3.cookie import CookieService
from pylti1p3.redirect import Redirect
from pylti1p3.request import Request as LtiRequest
from starlette.requests import Request
from starlette.responses import Response

from adaptive_lti.core.errors import LaunchError
from adaptive_lti.lti.adapters import (
    FastAPICookieService,
    FastAPIRedirect,
    FastAPIRequest,
    set_cookie,
)

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a loop of its own, in a thread of its own: other tests (Playwright's
    sync API) may leave an event loop running in this thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def starlette_request(
    method: str,
    query: bytes = b"",
    body: bytes = b"",
    cookie: bytes = b"",
    content_type: bytes = b"application/x-www-form-urlencoded",
) -> Request:
    headers = [(b"content-type", content_type)]
    if cookie:
        headers.append((b"cookie", cookie))
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": "/lti/login",
        "query_string": query,
        "headers": headers,
    }
    return Request(scope, receive)


def test_request_reads_query_for_get_and_form_for_post() -> None:
    get = run(
        FastAPIRequest.from_request(starlette_request("GET", b"iss=a&iss=b&x=1"), secure=False)
    )
    assert isinstance(get, LtiRequest)
    assert get.get_param("iss") == "a" and get.get_param("x") == "1"
    assert get.get_param("missing") is None
    post = run(
        FastAPIRequest.from_request(
            starlette_request("POST", b"from_query=q", b"iss=form&login_hint=3"), secure=True
        )
    )
    assert post.get_param("iss") == "form" and post.get_param("from_query") == "q"
    assert post.is_secure() is True and get.is_secure() is False


def test_request_cookies_session_and_long_values() -> None:
    request = run(
        FastAPIRequest.from_request(
            starlette_request("GET", b"v=" + b"x" * 20_000, cookie=b"lti1p3-state-a=state-a"),
            secure=False,
        )
    )
    assert request.get_cookie("lti1p3-state-a") == "state-a"
    assert request.get_cookie("other") is None
    assert dict(request.session) == {}
    value = request.get_param("v")
    assert value is not None and len(value) == 8192


def test_cookie_service_prefixes_names_and_reads_back() -> None:
    request = FastAPIRequest({}, {"lti1p3-state-x": "state-x"}, secure=False)
    cookies = FastAPICookieService(request)
    assert isinstance(cookies, CookieService)
    assert cookies.get_cookie("state-x") == "state-x"
    assert cookies.get_cookie("state-y") is None


@pytest.mark.parametrize(
    ("secure", "expected"),
    [
        (False, "lti1p3-state-x=state-x; Path=/lti; HttpOnly; Max-Age=600; SameSite=Lax"),
        (
            True,
            "lti1p3-state-x=state-x; Path=/lti; HttpOnly; Max-Age=600; Secure; SameSite=None; "
            "Partitioned",
        ),
    ],
)
def test_cookie_service_sets_cookies_on_the_response(secure: bool, expected: str) -> None:
    cookies = FastAPICookieService(FastAPIRequest({}, {}, secure=secure))
    cookies.set_cookie("state-x", "state-x", 600, path="/lti")
    response = Response()
    cookies.update_response(response)
    assert response.headers.getlist("set-cookie") == [expected]


def test_set_cookie_refuses_values_that_would_need_quoting() -> None:
    with pytest.raises(ValueError, match="base64url"):
        set_cookie(Response(), "name", "a;b", max_age=1, path="/", secure=False)


def test_redirect_answers_302_with_the_cookies() -> None:
    cookies = FastAPICookieService(FastAPIRequest({}, {}, secure=False))
    cookies.set_cookie("state-x", "state-x", 60)
    redirect = FastAPIRedirect("https://platform.example/auth?a=1", cookies)
    assert isinstance(redirect, Redirect)
    assert redirect.get_redirect_url() == "https://platform.example/auth?a=1"
    response = redirect.do_redirect()
    assert response.status_code == 302
    assert response.headers["location"] == "https://platform.example/auth?a=1"
    assert response.headers["set-cookie"].startswith("lti1p3-state-x=state-x")


def test_js_redirect_escapes_the_location() -> None:
    redirect = FastAPIRedirect("https://example.org/")
    redirect.set_redirect_url("https://platform.example/auth?a=1&b='><script>")
    assert redirect.get_redirect_url().endswith("<script>")
    body = bytes(redirect.do_js_redirect().body).decode()
    assert "<script>" not in body and "&#x27;&gt;&lt;script&gt;" in body
    assert "http-equiv='refresh'" in body


def test_form_fields_win_over_the_query_string_and_are_percent_decoded() -> None:
    request = run(
        FastAPIRequest.from_request(
            starlette_request("POST", b"state=from-query", b"state=from-form&name=Jo%C3%A3o+S"),
            secure=False,
        )
    )
    assert request.get_param("state") == "from-form"
    assert request.get_param("name") == "João S"


def test_multipart_forms_still_work() -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="id_token"\r\n\r\na.b.c\r\n--XyZ--\r\n'
    request = run(
        FastAPIRequest.from_request(
            starlette_request("POST", body=body, content_type=b"multipart/form-data; boundary=XyZ"),
            secure=False,
        )
    )
    assert request.get_param("id_token") == "a.b.c"


def test_oversized_or_overlong_forms_are_refused() -> None:
    with pytest.raises(LaunchError) as too_big:
        run(
            FastAPIRequest.from_request(
                starlette_request("POST", body=b"x=" + b"a" * (600 * 1024)), secure=False
            )
        )
    assert too_big.value.status_code == 413
    with pytest.raises(LaunchError) as too_many:
        run(
            FastAPIRequest.from_request(
                starlette_request("POST", body=b"&".join(b"f%d=1" % i for i in range(500))),
                secure=False,
            )
        )
    assert too_many.value.status_code == 400
