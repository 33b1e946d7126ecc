"""Thin FastAPI adapters for pylti1p3's request, cookie and redirect interfaces.

They follow ``pylti1p3/contrib/flask/{request,cookie,redirect}.py``: the login and launch code
reads parameters and cookies and answers through these, never through Starlette directly, so
the same objects can be handed to pylti1p3 classes that expect them.

Cookies: Moodle embeds the tool in an iframe, where browsers treat the tool's cookies as
third-party. The OIDC state cookie is therefore ``SameSite=None; Secure; Partitioned`` (CHIPS):
partitioned per top-level site, which browsers that block third-party cookies still accept. On
plain http (local development, the demo) ``Secure`` is impossible, so the cookie falls back to
``SameSite=Lax``, which works because the demo platform is on the tool's own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from pylti1p3.cookie import CookieService
from pylti1p3.redirect import Redirect
from pylti1p3.request import Request as LtiRequest
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adaptive_lti.core.errors import LaunchError

MAX_PARAM_CHARS = 8192
MAX_FORM_BYTES = 512 * 1024
MAX_FORM_FIELDS = 100
_COOKIE_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
EMPTY: Mapping[str, Any] = MappingProxyType({})


async def _form_items(request: Request) -> list[tuple[str, str]]:
    """The POSTed form's text fields. Platforms post urlencoded forms, parsed here directly:
    the general multipart parser costs more than the rest of a login (multipart still works)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise LaunchError(
                "request size",
                f"The form is {len(body)} bytes; a login or launch is never above {MAX_FORM_BYTES}.",
                hint="Start the activity from the platform's course page.",
                status_code=413,
            )
        try:
            return parse_qsl(
                body.decode("latin-1"),
                keep_blank_values=True,
                encoding="utf-8",
                errors="replace",
                max_num_fields=MAX_FORM_FIELDS,
            )
        except ValueError:
            raise LaunchError(
                "request size",
                f"The form has more than {MAX_FORM_FIELDS} fields.",
                hint="Start the activity from the platform's course page.",
                status_code=400,
            ) from None
    form = await request.form()
    return [(key, item) for key, item in form.multi_items() if isinstance(item, str)]


def set_cookie(
    response: Response,
    key: str,
    value: str,
    *,
    max_age: int | None,
    path: str,
    secure: bool,
) -> None:
    """Add a Set-Cookie header: HttpOnly, and ``SameSite=None; Secure; Partitioned`` on https
    (``SameSite=Lax`` on plain http). Written by hand because Starlette's ``partitioned`` needs
    Python 3.14's ``http.cookies``; names and values here are base64url tokens, no quoting."""
    if not key or not set(key) <= _COOKIE_SAFE or not set(value) <= _COOKIE_SAFE:
        raise ValueError("cookie names and values must be base64url tokens")
    parts = [f"{key}={value}", f"Path={path}", "HttpOnly"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts += ["Secure", "SameSite=None", "Partitioned"]
    else:
        parts.append("SameSite=Lax")
    response.headers.append("set-cookie", "; ".join(parts))


class FastAPIRequest(LtiRequest):
    """Parameters (query for GET, form for POST), cookies and the scheme of one request."""

    def __init__(
        self, params: Mapping[str, str], cookies: Mapping[str, str], *, secure: bool
    ) -> None:
        super().__init__()
        self._params = dict(params)
        self._cookies = dict(cookies)
        self._secure = secure

    @classmethod
    async def from_request(cls, request: Request, *, secure: bool) -> FastAPIRequest:
        """Read the query string and, for POST, the urlencoded or multipart form.

        ``secure`` is the tool's public scheme (Settings.base_url), not the socket's: behind a
        TLS-terminating proxy the socket is plain http but the browser talks https."""
        params: dict[str, str] = {}
        if request.method == "POST":
            for key, value in await _form_items(request):
                params.setdefault(key, value)
        for key, value in request.query_params.multi_items():
            params.setdefault(key, value)
        return cls(params, request.cookies, secure=secure)

    @property
    def session(self) -> Mapping[str, Any]:
        # There is no server-side web session: state and nonces live in the database.
        return EMPTY

    # pylti1p3 annotates str, but its own Flask adapter returns None for a missing parameter.
    def get_param(self, key: str) -> str | None:  # type: ignore[override]
        value = self._params.get(key)
        if value is None:
            return None
        return value[:MAX_PARAM_CHARS]

    def get_cookie(self, key: str) -> str | None:
        return self._cookies.get(key)

    def is_secure(self) -> bool:
        return self._secure


@dataclass(frozen=True)
class _PendingCookie:
    value: str
    max_age: int | None
    path: str


class FastAPICookieService(CookieService):
    """pylti1p3's cookie service: prefixed names, set on the response that goes out."""

    def __init__(self, request: FastAPIRequest) -> None:
        self._request = request
        self._to_set: dict[str, _PendingCookie] = {}

    def _get_key(self, key: str) -> str:
        return f"{self._cookie_prefix}-{key}"

    def get_cookie(self, name: str) -> str | None:
        value = self._request.get_cookie(self._get_key(name))
        return None if value is None else str(value)

    def set_cookie(
        self, name: str, value: str | int, exp: int | None = 3600, path: str = "/"
    ) -> None:
        self._to_set[self._get_key(name)] = _PendingCookie(str(value), exp, path)

    def update_response(self, response: Response) -> None:
        secure = self._request.is_secure()
        for key, cookie in self._to_set.items():
            set_cookie(
                response,
                key,
                cookie.value,
                max_age=cookie.max_age,
                path=cookie.path,
                secure=secure,
            )


class FastAPIRedirect(Redirect[Response]):
    """A redirect that carries the cookies set during the request."""

    def __init__(self, location: str, cookie_service: FastAPICookieService | None = None) -> None:
        super().__init__()
        self._location = location
        self._cookie_service = cookie_service

    def do_redirect(self) -> Response:
        # 302 makes the browser GET the platform's auth URL, as OIDC's redirect requires.
        return self._process_response(RedirectResponse(self._location, status_code=302))

    def do_js_redirect(self) -> Response:
        target = escape(self._location, quote=True)
        html = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='refresh' content='0;url={target}'><title>Redirecting</title>"
            "</head><body><main><p>Redirecting to your platform… "
            f"<a href='{target}'>Continue</a></p></main></body></html>"
        )
        return self._process_response(HTMLResponse(html))

    def set_redirect_url(self, location: str) -> None:
        self._location = location

    def get_redirect_url(self) -> str:
        return self._location

    def _process_response(self, response: Response) -> Response:
        if self._cookie_service is not None:
            self._cookie_service.update_response(response)
        return response
