"""The app that ``serve`` and ``demo`` run: the tool, and the demo platform when it is asked for.

``web.app.create_app`` builds the tool alone; the demo platform (its own package, ``demo/``) is
added through the factory's one hook, ``mounts``, here where both may be imported.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from adaptive_lti.cli.demo_link import ToolLinkInProcess
from adaptive_lti.demo.routes import mounting
from adaptive_lti.settings import Settings
from adaptive_lti.web.app import create_app


def mounts_for(settings: Settings) -> list[Callable[[FastAPI], None]]:
    """What to add to the tool's app: the demo platform when ``Settings.demo_platform`` is on."""
    if not settings.demo_platform:
        return []

    def mount_demo_platform(app: FastAPI) -> None:
        mounting.mount(
            app,
            base_url=settings.base_url,
            key_file=settings.demo_platform_key_file,
            tool=ToolLinkInProcess(app.state.session_factory, settings),
        )

    return [mount_demo_platform]


def build_app(settings: Settings) -> FastAPI:
    return create_app(settings, mounts=mounts_for(settings))


def create_served_app() -> FastAPI:
    """uvicorn's factory for ``serve`` (every worker process builds its own app)."""
    return build_app(Settings())
