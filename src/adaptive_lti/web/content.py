"""How learner-facing content is written into pages: Markdown rendered safely, numbers and dates
in the launch's locale.

Markdown comes from design files, which course designers write but learners read: raw HTML in it
is escaped, never passed through (markdown-it's CommonMark preset with ``html`` off), and links
are limited to safe schemes (markdown-it refuses ``javascript:``, ``vbscript:``, ``file:`` and
non-image ``data:`` URLs) and carry ``rel="noreferrer noopener"``. Locales come from the launch (LTI Core 1.3 §5.4.3
``launch_presentation.locale``); Moodle sends ``pt_br``, Babel wants ``pt_BR``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from markdown_it import MarkdownIt
from markupsafe import Markup

DEFAULT_LOCALE = "en"

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def _link_open(renderer: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    # A design's link leads off the tool: no Referer (the page's URL may carry the session
    # token) and no window.opener for the page it opens.
    tokens[index].attrSet("rel", "noreferrer noopener")
    rendered: str = renderer.renderToken(tokens, index, options, env)
    return rendered


_MARKDOWN.add_render_rule("link_open", _link_open)


def render_markdown(text: str) -> Markup:
    """Block Markdown (a page, a question's prompt) as safe HTML."""
    return Markup(_MARKDOWN.render(text))  # noqa: S704 - markdown-it escapes: html is off


def render_inline(text: str) -> Markup:
    """One line of Markdown (an answer choice) as safe inline HTML."""
    return Markup(_MARKDOWN.renderInline(text))  # noqa: S704 - markdown-it escapes: html is off


@lru_cache(maxsize=256)
def babel_locale(locale: str | None) -> Locale:
    """The Babel locale of a launch locale (``pt_br``, ``pt-BR``, ``en``), English when unknown."""
    if not locale:
        return Locale.parse(DEFAULT_LOCALE)
    language, _, region = locale.strip().replace("-", "_").partition("_")
    candidates = [f"{language.lower()}_{region.upper()}" if region else language.lower()]
    candidates.append(language.lower())
    for candidate in candidates:
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(DEFAULT_LOCALE)


def percent(value: float | None, locale: str | None) -> str:
    """0.8 -> "80%" (en), "80 %" (fr); "—" when there is no value."""
    if value is None:
        return "—"
    return format_percent(value, locale=babel_locale(locale))


def number(value: float | None, locale: str | None, *, digits: int = 2) -> str:
    if value is None:
        return "—"
    pattern = "#,##0." + "#" * digits if digits else "#,##0"
    return format_decimal(value, format=pattern, locale=babel_locale(locale))


def moment(value: datetime | None, locale: str | None) -> str:
    """A date and time as people of the locale write it (medium length), in UTC, said so:
    the launch tells the locale but not the learner's time zone."""
    if value is None:
        return "—"
    written = format_datetime(value, format="medium", tzinfo=UTC, locale=babel_locale(locale))
    return f"{written} UTC"
