"""The demo platform of the in-process tests: one per test module, with a key of its own, for a
tool at ``TOOL`` (tests/demo/samples.py)."""

from __future__ import annotations

import pytest

from adaptive_lti.demo.platform import DemoPlatform, PlatformKey, generate_private_key_pem
from tests.demo.samples import TOOL


@pytest.fixture(scope="module")
def key() -> PlatformKey:
    return PlatformKey.from_pem(generate_private_key_pem())


@pytest.fixture(scope="module")
def platform(key: PlatformKey) -> DemoPlatform:
    return DemoPlatform.for_tool(TOOL, key)
