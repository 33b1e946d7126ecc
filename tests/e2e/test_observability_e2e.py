"""Observability of the real server (``adaptive-lti demo`` processes over HTTP), on SQLite and
PostgreSQL: JSON log lines carry the request's id (uvicorn's access line too), and /metrics adds
up two processes' counters in prometheus-client's multiprocess mode after real launches."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DemoPlatformClient, RunningServer, start_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class TwoProcesses:
    first: RunningServer
    second: RunningServer


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def servers(
    request: pytest.FixtureRequest,
    new_database_url: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TwoProcesses]:
    """Two processes on one database behind one public URL, sharing a metrics directory."""
    backend: str = request.param
    data_dir = tmp_path_factory.mktemp(f"observability-{backend}")
    metrics_dir = data_dir / "prometheus"
    metrics_dir.mkdir()
    env = {
        "ADAPTIVE_LTI_LOG_FORMAT": "json",
        "ADAPTIVE_LTI_LOG_LEVEL": "INFO",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    first = start_server(new_database_url(backend), data_dir, extra_env=env)
    try:
        second = start_server(
            first.database_url, data_dir, base_url=first.base_url, extra_env=env, name="second"
        )
    except BaseException:
        first.stop()
        raise
    yield TwoProcesses(first, second)
    second.stop()
    first.stop()


def json_lines(server: RunningServer) -> list[dict[str, Any]]:
    """The server's log lines that are JSON objects (the demo's banner is plain print)."""
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def scrape(server: RunningServer) -> Samples:
    response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_log_line_of_a_request_carries_its_id(servers: TwoProcesses) -> None:
    server = servers.first
    response = httpx.get(
        server.url + "/no-such-page",
        headers={"X-Request-ID": "e2e-request-42", "Accept": "application/json"},
        timeout=10,
    )
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "e2e-request-42"
    assert response.json()["correlation_id"] == "e2e-request-42"
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in json_lines(server) if line["request_id"] == "e2e-request-42"]
        if {line["logger"] for line in lines} >= {"adaptive_lti.web", "uvicorn.access"}:
            break
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    access = next(line for line in lines if line["logger"] == "uvicorn.access")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/no-such-page", 404)
    refusal = next(line for line in lines if line["logger"] == "adaptive_lti.web")
    assert refusal["level"] == "WARNING"
    assert "Not found" in refusal["message"]
    # Lines outside any request (start-up) say so instead of borrowing an id.
    assert any(line["request_id"] == "-" for line in json_lines(server))


def test_metrics_add_up_launches_over_both_processes(servers: TwoProcesses) -> None:
    before = scrape(servers.first)
    for server in (servers.first, servers.second):
        client = DemoPlatformClient(server)
        try:
            page = client.launch_as("ana")
            assert page.status_code == 200, page.text
        finally:
            client.close()
    # A login the tool refuses, on the second process.
    refused = httpx.get(servers.second.url + "/lti/login", params={"login_hint": "x"}, timeout=10)
    assert refused.status_code == 400
    after_first, after_second = scrape(servers.first), scrape(servers.second)

    def moved(name: str, **labels: str) -> float:
        return value(after_first, name, **labels) - value(before, name, **labels)

    assert moved("adaptive_lti_launches_total", outcome="accepted") == 2
    assert moved("adaptive_lti_launch_refusals_total", step="login", check="iss") == 1
    # The learner's launch routes her (her first activity, or the intake form).
    assert (
        sum(
            moved("adaptive_lti_routing_decisions_total", kind=kind)
            for kind in ("activity", "choose", "input", "completed")
        )
        >= 2
    )
    assert (
        moved(
            "adaptive_lti_http_request_duration_seconds_count",
            method="POST",
            route="/lti/launch",
            status="200",
        )
        == 2
    )
    # Either process gives the same sums (the counters, not the scrape's own request).
    for name, labels in (
        ("adaptive_lti_launches_total", {"outcome": "accepted"}),
        ("adaptive_lti_launch_refusals_total", {"step": "login", "check": "iss"}),
    ):
        assert value(after_first, name, **labels) == value(after_second, name, **labels)
    # Both processes' pools (livesum), and the outbox read from the shared database.
    assert value(after_first, "adaptive_lti_db_pool_size") > 0
    assert ("adaptive_lti_score_outbox_pending", ()) in after_first


def test_a_stopped_process_leaves_the_pool_sum_but_not_the_counters(
    servers: TwoProcesses,
) -> None:
    before = scrape(servers.first)
    servers.second.stop()
    after = scrape(servers.first)
    # Its pool no longer counts (marked dead at shutdown); what it counted stays counted.
    assert (
        value(after, "adaptive_lti_db_pool_size") == value(before, "adaptive_lti_db_pool_size") / 2
    )
    assert value(after, "adaptive_lti_launches_total", outcome="accepted") == value(
        before, "adaptive_lti_launches_total", outcome="accepted"
    )
