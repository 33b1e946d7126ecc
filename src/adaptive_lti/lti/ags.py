"""LTI Assignment and Grade Services 2.0 client: line items, scores, results.

- Line items (§3.2): found in the platform's line-items container by ``resourceId`` (and the
  resource link and tag when given), created there when missing.
- Scores (§3.4) go to ``<line item URL path>/scores`` and results (§3.3) come from
  ``<path>/results``; the line item URL's query is kept (Moodle's ``?type_id=1``).
- The token asks for the AGS scopes the launch granted, and a call that needs a scope the
  launch did not grant is refused with what to turn on (Moodle: the tool's "IMS LTI Assignment
  and Grade Services" setting).
- Moodle refuses scores (HTTP 400) for users who cannot be graded in the course (teachers,
  people not enrolled): that becomes a permanent failure that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from adaptive_lti.core.grading import (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    LineItemSpec,
    PlatformLineItem,
    PlatformResult,
    ServiceCallRefused,
)
from adaptive_lti.lti.service_http import (
    MAX_PAGES,
    authorised_get,
    body_excerpt,
    next_page_url,
    parse_json_body,
    raise_for_service_status,
)
from adaptive_lti.lti.service_token import PlatformServiceClient

MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
AGS_SCOPES = frozenset(
    {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE}
)
# Where Moodle serves LTI Advantage services: its refusals get Moodle-specific explanations.
MOODLE_SERVICES_PATH = "/mod/lti/services.php/"
GRADE_SYNC_HINT = (
    "On Moodle, edit the tool (Site administration > Plugins > Activity modules > External tool "
    "> Manage tools) and set 'IMS LTI Assignment and Grade Services' to 'Use this service for "
    "grade sync and column management'; then launch the activity again."
)


def service_url(lineitem_url: str, endpoint: str) -> str:
    """``<line item path>/<endpoint>`` with the line item URL's query kept (AGS §3.3, §3.4)."""
    parts = urlsplit(lineitem_url)
    path = parts.path.rstrip("/") + "/" + endpoint
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def is_moodle(url: str) -> bool:
    return MOODLE_SERVICES_PATH in urlsplit(url).path + "/"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _line_item(body: Mapping[str, Any]) -> PlatformLineItem | None:
    url = body.get("id")
    maximum = _number(body.get("scoreMaximum"))
    if not isinstance(url, str) or not url or maximum is None:
        return None
    link = body.get("resourceLinkId", body.get("ltiLinkId"))
    return PlatformLineItem(
        url=url,
        label=_text(body.get("label")),
        score_maximum=maximum,
        resource_id=_text(body.get("resourceId")),
        tag=_text(body.get("tag")),
        resource_link_id=None if link in (None, "") else _text(link),
    )


def _matches(item: PlatformLineItem, spec: LineItemSpec) -> bool:
    if item.resource_id != spec.resource_id:
        return False
    if spec.tag and item.tag != spec.tag:
        return False
    return not (
        spec.platform_resource_link_id
        and item.resource_link_id not in (None, spec.platform_resource_link_id)
    )


class AgsClient(PlatformServiceClient):
    """Calls one platform's AGS endpoints for a registration. ``tokens`` authorises them."""

    def _scopes(
        self, granted: Iterable[str], needed: str, alternative: str | None = None
    ) -> set[str]:
        """The AGS scopes the launch granted; refused when the one needed is not among them."""
        scopes = set(granted) & AGS_SCOPES
        if needed not in scopes and (alternative is None or alternative not in scopes):
            raise ServiceCallRefused(
                f"The platform did not grant the tool the AGS scope {needed}.",
                hint=GRADE_SYNC_HINT,
            )
        return scopes

    def _entries(
        self,
        registration_id: int,
        scopes: set[str],
        url: str,
        media_type: str,
        *,
        service: str,
        wrapper_key: str,
        what: str,
    ) -> Iterator[Any]:
        """The entries of a container, page by page (``Link: rel="next"``, at most MAX_PAGES):
        a JSON array, or an object holding it under ``wrapper_key``."""
        next_url: str | None = url
        for _page in range(MAX_PAGES):
            if next_url is None:
                return
            response = self._tokens.send(
                registration_id,
                scopes,
                authorised_get(self._http, next_url, media_type),
                service,
            )
            raise_for_service_status(response, service)
            body = parse_json_body(response, service)
            entries = body.get(wrapper_key, []) if isinstance(body, dict) else body
            if not isinstance(entries, list):
                raise ServiceCallRefused(
                    f"The platform's {service} answered something that is not a {what}: "
                    + body_excerpt(response)
                )
            yield from entries
            next_url = next_page_url(response)

    # --- line items (§3.2) ------------------------------------------------------------------

    def list_line_items(
        self,
        registration_id: int,
        lineitems_url: str,
        granted_scopes: Iterable[str],
        **filters: str,
    ) -> list[PlatformLineItem]:
        """Every line item in a container, following ``Link: rel="next"`` pages. ``filters``
        (``resource_id``, ``resource_link_id``, ``tag``, §3.2.4) are sent as query parameters;
        the query the platform put in the URL is kept."""
        scopes = self._scopes(granted_scopes, SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM)
        url = str(
            httpx.URL(lineitems_url).copy_merge_params({k: v for k, v in filters.items() if v})
        )
        items: list[PlatformLineItem] = []
        # §3.2: the container is a JSON array; Moodle's own listing wraps it in "lineitems".
        for entry in self._entries(
            registration_id,
            scopes,
            url,
            MEDIA_LINEITEM_CONTAINER,
            service="line-items service",
            wrapper_key="lineitems",
            what="list of line items",
        ):
            if isinstance(entry, dict) and (item := _line_item(entry)) is not None:
                items.append(item)
        return items

    def create_line_item(self, registration_id: int, spec: LineItemSpec) -> PlatformLineItem:
        """POST a new line item to the container (§3.2.3); returns it with its URL."""
        if not spec.lineitems_url:
            raise ServiceCallRefused(
                "The tool cannot create a line item: the launch gave no line-items URL.",
                hint=GRADE_SYNC_HINT,
            )
        scopes = self._scopes(spec.granted_scopes, SCOPE_LINEITEM)
        body: dict[str, Any] = {"label": spec.label, "scoreMaximum": spec.score_maximum}
        if spec.resource_id:
            body["resourceId"] = spec.resource_id
        if spec.tag:
            body["tag"] = spec.tag
        if spec.platform_resource_link_id:
            body["resourceLinkId"] = spec.platform_resource_link_id
        lineitems_url = spec.lineitems_url
        response = self._tokens.send(
            registration_id,
            scopes,
            lambda token: self._http.build_request(
                "POST",
                lineitems_url,
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": MEDIA_LINEITEM,
                    "Accept": MEDIA_LINEITEM,
                },
            ),
            "line-items service",
        )
        raise_for_service_status(response, "line-items service")
        created = parse_json_body(response, "line-items service")
        item = _line_item(created) if isinstance(created, dict) else None
        if item is None:
            raise ServiceCallRefused(
                "The platform created the line item but did not say where it is (no 'id'): "
                + body_excerpt(response)
            )
        return item

    def find_or_create_line_item(
        self, registration_id: int, spec: LineItemSpec
    ) -> PlatformLineItem:
        """The platform's line item for ``spec``: the activity's own column when it has one
        (looked up by resource link first: Moodle's activity column, or one a teacher or an
        earlier tool made for it — never a second column for the same activity), else found by
        resourceId (resource link, tag), else created when the launch granted the ``lineitem``
        scope."""
        if spec.lineitem_url:
            return PlatformLineItem(
                url=spec.lineitem_url,
                label=spec.label,
                score_maximum=spec.score_maximum,
                resource_id=spec.resource_id,
                tag=spec.tag,
                resource_link_id=spec.platform_resource_link_id,
            )
        if not spec.lineitems_url:  # pragma: no cover - LineItemSpec refuses this
            raise ServiceCallRefused("The line item has neither a URL nor a container URL.")
        if spec.platform_resource_link_id:
            activity_columns = [
                item
                for item in self.list_line_items(
                    registration_id,
                    spec.lineitems_url,
                    spec.granted_scopes,
                    resource_link_id=spec.platform_resource_link_id,
                )
                if item.resource_link_id == spec.platform_resource_link_id
            ]
            if activity_columns:
                # Ours (same resourceId) if there, else the activity's own column.
                return next(
                    (item for item in activity_columns if _matches(item, spec)),
                    activity_columns[0],
                )
        filters = {
            "resource_id": spec.resource_id,
            "resource_link_id": spec.platform_resource_link_id or "",
            "tag": spec.tag,
        }
        for item in self.list_line_items(
            registration_id, spec.lineitems_url, spec.granted_scopes, **filters
        ):
            if _matches(item, spec):
                return item
        return self.create_line_item(registration_id, spec)

    # --- scores (§3.4) ----------------------------------------------------------------------

    def post_score(
        self,
        registration_id: int,
        lineitem_url: str,
        payload: Mapping[str, Any],
        granted_scopes: Iterable[str],
    ) -> None:
        """POST one score; returns when the platform accepted it (2xx)."""
        scopes = self._scopes(granted_scopes, SCOPE_SCORE)
        url = service_url(lineitem_url, "scores")
        body = dict(payload)
        response = self._tokens.send(
            registration_id,
            scopes,
            lambda token: self._http.build_request(
                "POST",
                url,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": MEDIA_SCORE},
            ),
            "score service",
        )
        user = body.get("userId", "?")
        if response.status_code == 400:
            detail = body_excerpt(response)
            if is_moodle(url):
                raise ServiceCallRefused(
                    f"Moodle refused the score for user {user}: they are not a gradable student "
                    "in this course (a teacher, or not enrolled)"
                    + (f" [{detail}]" if detail else "")
                    + ".",
                    hint="Only enrolled students get grades; the score stays in the tool.",
                )
            raise ServiceCallRefused(
                f"The platform refused the score for user {user} (HTTP 400"
                + (f": {detail}" if detail else "")
                + ").",
                hint="The user may not be gradable in this course (a teacher, or not enrolled).",
            )
        if response.status_code == 403:
            raise ServiceCallRefused(
                f"The platform forbids the tool to post scores to {lineitem_url} (HTTP 403).",
                hint=GRADE_SYNC_HINT,
            )
        if response.status_code == 409:
            raise ServiceCallRefused(
                f"The platform already holds a newer score for user {user} on {lineitem_url} "
                "(HTTP 409): this older score was not applied.",
                hint="Nothing to do: the newer score stands.",
            )
        if response.status_code == 404:
            raise ServiceCallRefused(
                f"The platform has no line item at {lineitem_url} (HTTP 404): the grade column "
                "or the activity was probably deleted.",
                hint="Launch the activity again so the tool learns its current grade column.",
            )
        raise_for_service_status(response, "score service")

    # --- results (§3.3) ---------------------------------------------------------------------

    def read_results(
        self,
        registration_id: int,
        lineitem_url: str,
        granted_scopes: Iterable[str],
        *,
        user_id: str | None = None,
    ) -> list[PlatformResult]:
        """The results of a line item (as the platform rescaled them), all pages."""
        scopes = self._scopes(granted_scopes, SCOPE_RESULT_READONLY)
        first = httpx.URL(service_url(lineitem_url, "results"))
        if user_id:
            first = first.copy_merge_params({"user_id": user_id})
        results: list[PlatformResult] = []
        for entry in self._entries(
            registration_id,
            scopes,
            str(first),
            MEDIA_RESULT_CONTAINER,
            service="results service",
            wrapper_key="results",
            what="list",
        ):
            if not isinstance(entry, dict) or not entry.get("userId"):
                continue
            results.append(
                PlatformResult(
                    user_id=_text(entry["userId"]),
                    result_score=_number(entry.get("resultScore")),
                    result_maximum=_number(entry.get("resultMaximum")),
                    comment=entry.get("comment") if isinstance(entry.get("comment"), str) else None,
                    timestamp=entry.get("timestamp")
                    if isinstance(entry.get("timestamp"), str)
                    else None,
                )
            )
        return results


def open_ags_client(
    session_factory: sessionmaker[Session], transport: httpx.BaseTransport | None = None
) -> AgsClient:
    """An AGS client with its own HTTP client and token provider; ``close()`` it when done."""
    return AgsClient.open(session_factory, transport)
