"""HTTP plumbing shared by the platform service clients (token, AGS, NRPS): error statuses as
the project's errors, JSON bodies whatever their Content-Type, ``Link`` paging (RFC 8288).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from adaptive_lti.core.grading import ServiceCallRefused, ServiceUnavailable

DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
# 4xx statuses that mean "not now" rather than "never": request timeout, too early, rate limit.
TEMPORARY_CLIENT_ERRORS = frozenset({408, 425, 429})
# Enough pages for any course; a platform whose "next" links loop forever is stopped here.
MAX_PAGES = 1000

_LINK_VALUE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_LINK_PARAM = re.compile(r';\s*([A-Za-z0-9!#$&+.^_`|~-]+)\s*=\s*(?:"([^"]*)"|([^;,\s]*))')


def describe_transport_error(error: httpx.TransportError, url: str) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"the platform did not answer in time ({url})"
    return f"could not connect to the platform ({url}: {error.__class__.__name__}: {error})"


# What Moodle does when its cURL security settings stop it fetching the tool's keys: its
# token.php answers an HTML error page (HTTP 404) and its deep-linking return says
# "jwks_helper::fix_jwks_alg(): Argument #1 ($jwks) must be of type array, null given".
MOODLE_CURL_HINT = (
    "On Moodle this usually means Moodle could not fetch the tool's public keys (the tool's "
    "JWKS URL, /.well-known/jwks.json): in Site administration > General > Security > HTTP "
    "security, take the tool's host (or 127.0.0.0/8, localhost, its private network) out of "
    "'cURL blocked hosts list' and put the tool's port in 'cURL allowed ports list' (or empty "
    "it), then purge Moodle's caches (Site administration > Development > Purge caches: Moodle "
    "keeps a tool's key set per client id). Also check the platform's URLs in the tool's "
    "registration ('adaptive-lti platform show ID'; 'platform update' edits them)."
)
_HTML_START = re.compile(r"^\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>])", re.I | re.S)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
# Moodle's error pages put the message in <p class="errormessage"> (or "Exception - ...").
_ERROR_MESSAGE = re.compile(
    r"<(?:p|div)[^>]*class=\"[^\"]*errormessage[^\"]*\"[^>]*>(.*?)</(?:p|div)>", re.I | re.S
)
_TAG = re.compile(r"<[^>]+>")


def _plain(fragment: str, limit: int) -> str:
    text = " ".join(html.unescape(_TAG.sub(" ", fragment)).split())
    return text if len(text) <= limit else text[:limit] + "…"


def html_error_page(response: httpx.Response) -> str | None:
    """When a platform answered a service call with an HTML page (a Moodle error page, a login
    or maintenance page), what the page says (its error message or title); else None."""
    try:
        text = response.content[:200_000].decode("utf-8", errors="replace")
    except httpx.ResponseNotRead:
        return None
    if not _HTML_START.match(text):
        return None
    found = _ERROR_MESSAGE.search(text) or _TITLE.search(text)
    said = _plain(found.group(1) if found else text, 200)
    return f"an HTML page saying {said!r}" if said else "an empty HTML page"


def body_excerpt(response: httpx.Response, limit: int = 300) -> str:
    """The start of a response body, on one line, for error messages; an HTML page is told by
    what it says, never shown as markup."""
    page = html_error_page(response)
    if page is not None:
        return page
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def parse_json_body(response: httpx.Response, what: str) -> Any:
    """A response body as JSON, whatever the Content-Type claims (Moodle says text/html)."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as error:
        hint = "Check that the URL the platform gave for this service is right."
        if html_error_page(response) is not None:
            hint = MOODLE_CURL_HINT
        raise ServiceCallRefused(
            f"The platform's {what} answer is not JSON: {body_excerpt(response) or '(empty)'}",
            hint=hint,
        ) from error


def raise_for_service_status(response: httpx.Response, what: str) -> None:
    """Turn an error status into a refused call (4xx) or a temporary failure (5xx, 408, 429)."""
    status = response.status_code
    if 300 <= status < 400:
        raise ServiceCallRefused(
            f"The platform's {what} redirected the tool to "
            f"{response.headers.get('location', '(no location)')} (HTTP {status}).",
            hint="Check the platform's URLs in the tool's registration (https, host name).",
        )
    if status < 300:
        return
    detail = body_excerpt(response)
    message = f"The platform's {what} answered HTTP {status}" + (f": {detail}" if detail else ".")
    hint = MOODLE_CURL_HINT if html_error_page(response) is not None else ""
    if status >= 500 or status in TEMPORARY_CLIENT_ERRORS:
        raise ServiceUnavailable(message, hint=f"{hint} The tool will try again later.".strip())
    raise ServiceCallRefused(message, hint=hint)


def authorised_get(http: httpx.Client, url: str, accept: str) -> Callable[[str], httpx.Request]:
    """Builds a GET of ``url`` with a bearer token (for ``ServiceTokenProvider.send``)."""

    def build(token: str) -> httpx.Request:
        return http.build_request(
            "GET", url, headers={"Authorization": f"Bearer {token}", "Accept": accept}
        )

    return build


def next_page_url(response: httpx.Response) -> str | None:
    """The ``rel="next"`` target of a response's Link header, exactly as the platform wrote it
    (relative targets resolved against the request URL, RFC 8288 §3.2), or None."""
    for header in response.headers.get_list("link"):
        for match in _LINK_VALUE.finditer(header):
            target, params = match.group(1), match.group(2)
            for param in _LINK_PARAM.finditer(params):
                name = param.group(1).lower()
                value = param.group(2) if param.group(2) is not None else param.group(3)
                if name == "rel" and "next" in value.lower().split():
                    if "://" in target:
                        return target
                    return str(response.request.url.join(target))
    return None


def new_http_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The HTTP client for platform services: bounded timeouts, and no redirects (a redirected
    POST turns into a GET and a score would be silently lost; the error names the new URL)."""
    return httpx.Client(
        transport=transport,
        timeout=DEFAULT_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": "adaptive-lti"},
    )
