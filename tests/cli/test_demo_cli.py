"""``adaptive-lti demo``: its settings, its socket, and its refusals (the running server itself is
exercised end to end in tests/e2e)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from adaptive_lti.cli import build_parser, main
from adaptive_lti.cli.demo import demo_settings, listen
from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.settings import Settings


def test_demo_defaults_put_everything_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADAPTIVE_LTI_DATABASE_URL", raising=False)
    monkeypatch.delenv("ADAPTIVE_LTI_BASE_URL", raising=False)
    settings = demo_settings(
        Settings(_env_file=None),  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=None,
        url="http://127.0.0.1:8123",
    )
    assert settings.demo_platform is True
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'adaptive-lti-demo.db'}"
    assert settings.base_url == "http://127.0.0.1:8123"
    assert settings.demo_platform_key_file == tmp_path.resolve() / "demo-platform-key.pem"


def test_what_the_environment_sets_wins_and_the_option_wins_over_it(tmp_path: Path) -> None:
    environment = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql://db.example/lti",
        base_url="https://tool.example.org",
    )
    settings = demo_settings(environment, data_dir=tmp_path, database_url=None, url="http://x:1")
    assert settings.database_url == "postgresql://db.example/lti"
    assert settings.base_url == "https://tool.example.org"
    chosen = demo_settings(
        environment, data_dir=tmp_path, database_url="sqlite:///chosen.db", url="http://x:1"
    )
    assert chosen.database_url == "sqlite:///chosen.db"


def test_production_refuses_the_demo(tmp_path: Path) -> None:
    production = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        secret_key="p" * 40,
    )
    with pytest.raises(ValueError, match="cannot be turned on in production"):
        demo_settings(production, data_dir=tmp_path, database_url=None, url="http://x:1")


def test_the_command_line_refuses_the_demo_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTIVE_LTI_ENVIRONMENT", "production")
    monkeypatch.setenv("ADAPTIVE_LTI_SECRET_KEY", "p" * 40)
    code = main(["demo", "--port", "0", "--data-dir", str(tmp_path)])
    assert code == 1
    assert "cannot be turned on in production" in capsys.readouterr().err
    assert not (tmp_path / "adaptive-lti-demo.db").exists()


def test_port_zero_gets_a_free_port() -> None:
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()


def test_a_busy_port_says_what_to_do() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        with pytest.raises(InvalidInputError) as caught:
            listen("127.0.0.1", port)
    finally:
        busy.close()
    assert f"Port {port}" in caught.value.message
    assert f"--port {port + 1}" in caught.value.hint


def test_demo_options_are_documented() -> None:
    help_text = build_parser().parse_args(["demo"]).__dict__
    assert {"host", "port", "data_dir", "database_url"} <= set(help_text)
    assert help_text["host"] == "127.0.0.1" and help_text["port"] == 8000
