"""The tool's Prometheus counters and histograms, defined once per process.

A module of definitions only (like ``settings.py``, beside the layers): the places that count
(a launch refused in ``web/errors.py``, a routing decision in ``services/journey/recording.py``) call
``.inc()`` on these, and ``web/observability.py`` serves them at ``/metrics``. Labels take values
from short fixed sets only (no user input, no raw paths), so the number of series stays bounded.

With ``PROMETHEUS_MULTIPROC_DIR`` set before the process starts, prometheus-client keeps these
values in files of that directory, and a scrape of any process adds up every process's values.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram

LAUNCHES = Counter(
    "adaptive_lti_launches",
    "LTI launches received at /lti/launch, by outcome: accepted, refused, binding_needed "
    "(genuine token, browser not yet tied to its login) or platform_error (the platform "
    "reported an OIDC error instead of a token).",
    ["outcome"],
)
REFUSALS = Counter(
    "adaptive_lti_launch_refusals",
    "LTI logins and launches refused, by step (login, launch, other) and by the check that "
    "failed (signature, nonce, state, aud, exp, deployment_registered, ...).",
    ["step", "check"],
)
ROUTING_DECISIONS = Counter(
    "adaptive_lti_routing_decisions",
    "Routing decisions the engine made for learners, by kind: activity, choose, input, completed.",
    ["kind"],
)
REQUEST_DURATION = Histogram(
    "adaptive_lti_http_request_duration_seconds",
    "Time to answer HTTP requests, by method, route template (not the raw path) and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# The pool of each process, summed over the live processes in multiprocess mode.
POOL_CHECKED_OUT = Gauge(
    "adaptive_lti_db_pool_checked_out",
    "Database connections in use (checked out of the pool).",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "adaptive_lti_db_pool_size",
    "Connections the database pool keeps (its configured size).",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "adaptive_lti_db_pool_overflow",
    "Connections open beyond the pool's size (overflow in use).",
    multiprocess_mode="livesum",
)

_PARENTHESISED = re.compile(r"\(([a-z0-9_]+)\)")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def refusal_code(check: str) -> str:
    """The short code of a refusal's check: "audience (aud)" -> "aud", "state" -> "state",
    "deployment registered" -> "deployment_registered". Checks are fixed strings in the code,
    so the codes are a fixed set; the length cap keeps it so whatever a check becomes."""
    lowered = check.lower()
    match = _PARENTHESISED.search(lowered)
    code = match.group(1) if match else _NOT_SLUG.sub("_", lowered).strip("_")
    return code[:40] or "other"
