"""The administrator's "Manage tools" (logic in ``demo/dynamic_registration.py``): registering a
tool by LTI Dynamic Registration as Moodle 4.5 does (the registration token, the frame, the
registration endpoint the tool posts to), activating a registered tool, launching it, and the
site's HTTP security setting that decides whether the platform may fetch the tool's keys.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from adaptive_lti.core.lti import PlatformRegistrationInfo, RegistrationStatus
from adaptive_lti.demo import dynamic_registration
from adaptive_lti.demo.platform import DEMO_PLATFORM_PATH
from adaptive_lti.demo.routes.common import (
    NO_STORE_HEADERS,
    CodecDep,
    PlatformDep,
    StoreDep,
    ToolDep,
    form_post_page,
    get_now,
    person_or_404,
    set_pending_cookie,
    templates,
)
from adaptive_lti.demo.store import curl_blocks_tool, set_curl_blocks_tool

router = APIRouter(prefix=DEMO_PLATFORM_PATH, tags=["demo platform"])


@router.get("/admin/tools", name="demo_platform_tools")
def manage_tools(
    request: Request, platform: PlatformDep, store: StoreDep, tool_link: ToolDep
) -> Response:
    """Site administration → Manage tools: the "Tool URL" box and the tools registered so far,
    each with what the tool says of the registration (the tool shares this server's process)."""
    tools = dynamic_registration.tool_registrations(store)
    tool_side: dict[str, PlatformRegistrationInfo | None] = {
        tool.client_id: tool_link.registration_at_tool(platform.issuer, tool.client_id)
        for tool in tools
    }
    return templates.TemplateResponse(
        request,
        "tools.html",
        {
            "platform": platform,
            "tools": tools,
            "tool_side": tool_side,
            "awaiting_approval": RegistrationStatus.awaiting_approval,
            "curl_blocks_tool": curl_blocks_tool(store),
            "default_tool_url": platform.tool_login_url.rsplit("/", 1)[0] + "/register",
        },
        headers=NO_STORE_HEADERS,
    )


@router.post("/admin/tools/register", name="demo_platform_tools_register")
def start_tool_registration(
    request: Request,
    platform: PlatformDep,
    store: StoreDep,
    tool_url: Annotated[str, Form(max_length=2_000)],
    registration_type: Annotated[str, Form(max_length=16)] = "",
    update_client_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """ "Add LTI Advantage": a fresh registration token, and the tool's URL opened in a frame.

    As Moodle's ``startltiadvregistration.php``: when tools on that domain exist, it first asks
    whether to update one of them (``type=2``, a ``reg-update`` token) or to register a new one
    (``type=0``)."""
    dynamic_registration.check_tool_url(tool_url)
    existing = dynamic_registration.tools_on_domain(store, tool_url)
    if existing and registration_type not in ("new", "update"):
        return templates.TemplateResponse(
            request,
            "tool_registration_choice.html",
            {"platform": platform, "tool_url": tool_url, "tools": existing},
            headers=NO_STORE_HEADERS,
        )
    token = dynamic_registration.issue_registration_token(
        store,
        int(get_now(request).timestamp()),
        update_client_id=update_client_id
        if registration_type == "update" and update_client_id
        else None,
    )
    return templates.TemplateResponse(
        request,
        "tool_registration.html",
        {
            "platform": platform,
            "start_url": dynamic_registration.registration_start_url(tool_url, platform, token),
        },
        headers=NO_STORE_HEADERS,
    )


@router.post("/admin/security", name="demo_platform_http_security")
def http_security(
    request: Request,
    store: StoreDep,
    curl_blocks_tool: Annotated[str, Form(max_length=8)] = "",
) -> RedirectResponse:
    """Site administration → General → Security → HTTP security: whether "cURL blocked hosts
    list" holds the tool's host (Moodle's default does for a tool on localhost)."""
    set_curl_blocks_tool(store, curl_blocks_tool == "on")
    return RedirectResponse(str(request.url_for("demo_platform_tools")), status_code=303)


@router.post("/admin/tools/{client_id}/activate", name="demo_platform_tools_activate")
def activate_tool(
    request: Request, platform: PlatformDep, store: StoreDep, client_id: str
) -> RedirectResponse:
    dynamic_registration.activate_tool(store, client_id[:64])
    return RedirectResponse(str(request.url_for("demo_platform_tools")), status_code=303)


@router.post("/admin/tools/{client_id}/launch", name="demo_platform_tools_launch")
def launch_registered_tool(
    request: Request,
    platform: PlatformDep,
    codec: CodecDep,
    store: StoreDep,
    client_id: str,
    person: Annotated[str, Form(max_length=64)],
) -> Response:
    """Launch the course's activity through a tool registered by dynamic registration (its own
    client id and deployment id), to try the registration out as a course would use it."""
    through = dynamic_registration.platform_for_tool(store, platform, client_id[:64])
    chosen = person_or_404(through, person)
    response = form_post_page(
        request,
        through.login_initiation(chosen),
        heading=f"Launching the tool (client id {through.client_id}) as {chosen.name}",
        explanation="The platform starts an LTI 1.3 login at the tool with the client id and "
        "deployment id the dynamic registration gave it. Your browser sends this form by itself.",
        button="Continue to the tool",
    )
    pending = replace(through.pending_launch_for(chosen), client_id=through.client_id)
    set_pending_cookie(response, platform, codec, pending)
    return response


@router.post("/registration", name="demo_platform_registration")
async def registration_endpoint(
    request: Request, platform: PlatformDep, store: StoreDep
) -> Response:
    """The registration endpoint (Dynamic Registration 1.0 §3.5.2), as Moodle's
    openid-registration.php: errors as RFC 7591 JSON, the answer as JSON sent as text/html."""
    body_bytes = b""
    async for chunk in request.stream():
        body_bytes += chunk
        if len(body_bytes) > dynamic_registration.MAX_REGISTRATION_BYTES:
            error = dynamic_registration.RegistrationRefused(
                413, "invalid_client_metadata", "the registration request is too large"
            )
            return JSONResponse(error.body(), status_code=error.status_code)
    try:
        body = json.loads(body_bytes)
    except (UnicodeDecodeError, ValueError):
        body = None
    try:
        answer = await run_in_threadpool(
            dynamic_registration.register_tool,
            store,
            platform,
            request.headers.get("authorization"),
            body,
            int(get_now(request).timestamp()),
        )
    except dynamic_registration.RegistrationRefused as error:
        return JSONResponse(error.body(), status_code=error.status_code)
    return JSONResponse(answer, media_type="text/html; charset=utf-8")
