"""Input the databases refuse, refused at the door, before any route or query runs.

PostgreSQL cannot store a NUL character (U+0000) in text, nor can any UTF-8 database store a
lone surrogate; a value longer than its column (``String(255)``) is an error there, where SQLite
stores it anyway. So one ASGI middleware checks every request's path, query string, headers and
form or JSON body: text must be valid UTF-8 without NUL, each value at most its limit, and bodies
at most their size. A refusal is a 422, as for any wrong form (400 for a query string too long,
413 for a body too large), with a page that names the field and the limit, the same on both databases. The id_token's claims are checked in
``lti/claims.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adaptive_lti.core.loader import MAX_DESIGN_BYTES
from adaptive_lti.lti.adapters import MAX_PARAM_CHARS
from adaptive_lti.services.journey.learner_actions import MAX_REFLECTION_LENGTH
from adaptive_lti.web.errors import error_response

# Characters no database column takes: NUL, and lone surrogates (JSON's "\ud800").
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# Values that end up in, or are compared with, String(255) columns (LTI Core 1.3 §4.1 login
# parameters), and the few fields that are long by nature. Any other field: DEFAULT_VALUE_CHARS.
DEFAULT_VALUE_CHARS = 4096
VALUE_LIMITS: dict[str, int] = {
    "iss": 255,
    "client_id": 255,
    "lti_deployment_id": 255,
    "lti_storage_target": 255,
    "state": 255,
    "login_hint": 2048,
    "target_link_uri": 2048,
    "id_token": MAX_PARAM_CHARS,  # what lti/adapters.py passes on
    "JWT": 64 * 1024,  # a deep-linking response the demo platform receives
    "client_assertion": 16_000,
    "lti_storage_state": 8192,
    "tool_session": 8192,
    "design_text": MAX_DESIGN_BYTES,
    "text": MAX_REFLECTION_LENGTH,  # a learner's reflection (journey/page.html)
    "source_text": MAX_DESIGN_BYTES,
}
MAX_PATH_CHARS = 2048
MAX_QUERY_BYTES = 32 * 1024
# A pasted design of MAX_DESIGN_BYTES may triple when percent-encoded; an uploaded file travels
# as it is, plus the form's other fields.
MAX_FORM_BYTES = 3 * MAX_DESIGN_BYTES + 64 * 1024
MAX_MULTIPART_BYTES = MAX_DESIGN_BYTES + 256 * 1024
MAX_OTHER_BODY_BYTES = 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

HINT = "Send the form again from the tool's or the platform's own page, without the character."


class InputRefused(Exception):
    def __init__(self, status_code: int, message: str, hint: str = HINT) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.hint = hint


def _mebibytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def check_text(where: str, text: str, limit: int | None = None) -> None:
    """Refuse ``text`` (named ``where`` in the message) that no database column can take."""
    found = UNSTORABLE.search(text)
    if found is not None:
        what = "a NUL character (U+0000)" if found.group() == "\x00" else "a lone surrogate"
        raise InputRefused(422, f"The {where} contains {what}, which the tool cannot store.")
    if limit is not None and len(text) > limit:
        raise InputRefused(
            422,
            f"The {where} is {len(text):,} characters long; the tool accepts at most {limit:,}.",
            "Shorten it and send it again; if a platform sent it, tell the platform's "
            "administrator.",
        )


def _decode(where: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputRefused(
            422,
            f"The {where} is not valid UTF-8 text (bad byte at position {error.start + 1}): "
            "the tool cannot store it.",
        ) from None


def _name(raw: bytes) -> str:
    return raw.decode("latin-1")[:60]


def check_urlencoded(kind: str, data: bytes) -> None:
    """A query string or form body: every name and value valid UTF-8, no NUL, within its limit."""
    for pair in data.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(raw_name.replace(b"+", b" "))
        name = _decode(f"name of a {kind}", name_bytes)
        check_text(f"name of the {kind} {name[:60]!r}", name, 255)
        value = _decode(f"{kind} {name[:60]!r}", unquote_to_bytes(raw_value.replace(b"+", b" ")))
        check_text(f"{kind} {name[:60]!r}", value, VALUE_LIMITS.get(name, DEFAULT_VALUE_CHARS))


MAX_JSON_DEPTH = 64


def check_json(value: Any, where: str = "JSON body", depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise InputRefused(422, f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
    if isinstance(value, str):
        check_text(where, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(f"{where} key", key)
            check_json(item, f"{where} field {key[:60]!r}", depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, where, depth + 1)


def _check_target(scope: Scope) -> None:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    path = _decode("address (path)", unquote_to_bytes(raw_path))
    check_text("address (path)", path, MAX_PATH_CHARS)
    query: bytes = scope.get("query_string", b"")
    if len(query) > MAX_QUERY_BYTES:
        raise InputRefused(
            400,
            f"The address's query string is {len(query):,} bytes long; the tool accepts at most "
            f"{MAX_QUERY_BYTES:,}.",
            "Open the page from the tool's or the platform's own link.",
        )
    check_urlencoded("query parameter", query)
    for name, value in scope.get("headers", ()):
        if b"\x00" in value:
            raise InputRefused(400, f"The header {_name(name)!r} contains a NUL character.")


def _body_limit(content_type: str) -> int:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return MAX_FORM_BYTES
    if content_type.startswith("multipart/form-data"):
        return MAX_MULTIPART_BYTES
    return MAX_OTHER_BODY_BYTES


def _too_large(size: int | str, limit: int) -> InputRefused:
    return InputRefused(
        413,
        f"The request's body is {size} bytes; the tool accepts at most {_mebibytes(limit)} "
        "here (a design file at most "
        f"{_mebibytes(MAX_DESIGN_BYTES)}).",
        "Send a smaller file or less text.",
    )


async def _check_body(content_type: str, headers: Headers, body: bytes) -> None:
    if content_type.startswith("application/x-www-form-urlencoded"):
        check_urlencoded("form field", body)
    elif content_type.startswith("multipart/form-data"):

        async def stream() -> Any:
            yield body

        try:
            form = await MultiPartParser(headers, stream(), max_part_size=MAX_FORM_BYTES).parse()
        except MultiPartException:
            return  # the route's own parser says what is wrong with it
        try:
            for name, value in form.multi_items():
                if isinstance(value, str):
                    check_text(
                        f"form field {name[:60]!r}",
                        value,
                        VALUE_LIMITS.get(name, DEFAULT_VALUE_CHARS),
                    )
        finally:
            await form.close()
    elif content_type.startswith("application/json"):
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return  # not JSON: the route says so
        check_json(document)


class InputLimitsMiddleware:
    """See the module docstring. Bodies are read whole (they are bounded) and replayed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_target(scope)
            if scope["method"] not in BODY_METHODS:
                await self.app(scope, receive, send)
                return
            headers = Headers(scope=scope)
            content_type = headers.get("content-type", "").lower()
            limit = _body_limit(content_type)
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(f"{int(declared):,}", limit)
            body = await _read_body(receive, limit)
            await _check_body(content_type, headers, body)
        except InputRefused as refusal:
            response = error_response(
                Request(scope), refusal.status_code, "Input refused", refusal.message, refusal.hint
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit:,}", limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
