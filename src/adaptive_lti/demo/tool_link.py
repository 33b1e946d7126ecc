"""What the demo platform asks of the tool it is mounted beside: the one seam between them.

A real platform knows a tool by what its administrator typed in (``platform add`` on the tool's
side) and by the tool's public key set, fetched over HTTP. The demo runs in the tool's process,
so the wiring (``cli/app.py``) hands it these four answers instead; it reads nothing else of the
tool, and the tool imports nothing of it (both directions are import-linter contracts).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from adaptive_lti.core.lti import PlatformRegistrationInfo

if TYPE_CHECKING:
    from adaptive_lti.demo.platform import DemoPlatform


class ToolLink(Protocol):
    def register_platform(self, platform: DemoPlatform, now: datetime) -> None:
        """Register the platform with the tool as an administrator would (``platform add``)."""

    def signing_secret(self) -> str:
        """The secret the demo signs its cookies and tokens with (the tool's, so every server
        process agrees on it)."""

    def published_jwks(self) -> dict[str, Any]:
        """The tool's public key set, what a platform fetches from its JWKS URL."""

    def registration_at_tool(self, issuer: str, client_id: str) -> PlatformRegistrationInfo | None:
        """What the tool records of a registration (shown on the demo's Manage tools page)."""
