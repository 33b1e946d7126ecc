"""``adaptive-lti serve`` in a subprocess (the production command, not the demo), and the
processes it takes to run it the way it is deployed: nginx in front (``deploy/nginx.conf``,
rendered onto loopback ports, TLS with a certificate made here) and a private PostgreSQL server
that a test may stop and start (never the shared one on port 5432).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import E2E_SECRET_KEY, RunningServer

START_TIMEOUT_SECONDS = 60
LISTENING = re.compile(r"listening on (http://\S+) ")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_environment(
    database_url: str, data_dir: Path, base_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADAPTIVE_LTI_")}
    env.update(
        {
            "ADAPTIVE_LTI_ENVIRONMENT": "test",
            "ADAPTIVE_LTI_SECRET_KEY": E2E_SECRET_KEY,
            "ADAPTIVE_LTI_LOG_LEVEL": "INFO",
            "ADAPTIVE_LTI_DATABASE_URL": database_url,
            "ADAPTIVE_LTI_BASE_URL": base_url,
            "ADAPTIVE_LTI_DEMO_PLATFORM": "true",
            "ADAPTIVE_LTI_DEMO_PLATFORM_KEY_FILE": str(data_dir / "demo-platform-key.pem"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def publish_demo_course(server: RunningServer) -> None:
    """Publish the example design into the tenant of the demo platform that ``server`` mounts
    (designs belong to one platform registration, so the platform must be registered first:
    call this once the server is up). The app built here registers the same platform, with the
    same key file, as the server did."""
    from adaptive_lti.cli.app import build_app
    from adaptive_lti.cli.demo import publish_example_design
    from adaptive_lti.settings import Settings

    settings = Settings(
        environment="test",
        secret_key=E2E_SECRET_KEY,
        database_url=server.database_url,
        base_url=server.base_url,
        demo_platform=True,
        demo_platform_key_file=server.data_dir / "demo-platform-key.pem",
        grade_delivery_worker=False,
    )
    app = build_app(settings)
    try:
        published = publish_example_design(app)
        assert "not registered" not in published and "not found" not in published, published
    finally:
        app.state.engine.dispose()


def start_serve(
    database_url: str,
    data_dir: Path,
    *,
    base_url: str,
    name: str,
    workers: int = 1,
    port: int = 0,
    migrate: bool = True,
    extra_env: dict[str, str] | None = None,
) -> RunningServer:
    """``adaptive-lti serve`` with the demo platform mounted; waits for ``/healthz``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{name}.log"
    command = [sys.executable, "-m", "adaptive_lti.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    if not migrate:
        command.append("--no-migrate")
    env = serve_environment(database_url, data_dir, base_url, extra_env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data_dir
        )
    server = RunningServer(
        url="",
        base_url=base_url,
        database_url=database_url,
        data_dir=data_dir,
        log_path=log_path,
        process=process,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        match = LISTENING.search(server.log())
        if match:
            server.url = match.group(1)
            try:
                if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"'adaptive-lti serve' did not start:\n{server.log()}")


# --- TLS -----------------------------------------------------------------------------------------


def make_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own trust anchor: (cert, key) files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adaptive-lti e2e")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tool.crt", directory / "tool.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def trusting(cert_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert_path))


# --- nginx ---------------------------------------------------------------------------------------

NGINX_CONF = PROJECT_ROOT / "deploy" / "nginx.conf"
# A request carrying this header goes to one tool process ("1" or "2"); without it nginx
# balances over both, as deploy/nginx.conf does.
PIN_HEADER = "X-Test-Upstream"


def nginx_binary() -> str:
    """Debian's nginx (scripts/check.py installs it). Missing: a skip, but a failure under CI."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
    )
    if found is None:
        message = "nginx is not installed (apt-get install -y nginx; scripts/check.py does it)"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def _replace_once(text: str, old: str, new: str) -> str:
    count = text.count(old)
    assert count == 1, f"deploy/nginx.conf should contain {old!r} once, found {count}"
    return text.replace(old, new)


def render_nginx_conf(
    *,
    https_port: int,
    http_port: int,
    upstreams: list[str],
    cert: Path,
    key: Path,
    run_dir: Path,
) -> str:
    """deploy/nginx.conf with loopback ports, files under ``run_dir`` and the given upstreams
    (host:port), plus the test's pinning header. Every other line is the deployed one."""
    text = NGINX_CONF.read_text()
    # Not root, or root with files a www-data worker cannot read: run as whoever starts it.
    text = _replace_once(text, "user www-data;\n", "")
    text = _replace_once(text, "pid /run/nginx.pid;", f"pid {run_dir}/nginx.pid;")
    text = _replace_once(
        text, "error_log /var/log/nginx/error.log warn;", f"error_log {run_dir}/error.log warn;"
    )
    temp_paths = "".join(
        f"\n    {kind}_temp_path {run_dir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _replace_once(
        text,
        "access_log /var/log/nginx/access.log tool;",
        f"access_log {run_dir}/access.log tool;{temp_paths}",
    )
    servers = re.findall(r"^ *server tool-\d+:8000 [^;]*;\n", text, flags=re.MULTILINE)
    assert len(servers) == 2, "deploy/nginx.conf's upstream should list two tool processes"
    options = servers[0].strip().split(" ", 2)[2]
    text = text.replace(servers[1], "")
    text = text.replace(
        servers[0], "".join(f"        server {address} {options}\n" for address in upstreams)
    )
    pinned = "".join(
        f"    upstream tool_{number} {{ server {address}; }}\n"
        for number, address in enumerate(upstreams, start=1)
    )
    choices = "".join(f'        "{number}" tool_{number};\n' for number in range(1, 3))
    text = _replace_once(
        text,
        "    upstream tool {",
        f"    map $http_{PIN_HEADER.lower().replace('-', '_')} $tool_upstream {{\n"
        f"        default tool;\n{choices}    }}\n{pinned}    upstream tool {{",
    )
    text = _replace_once(text, "proxy_pass http://tool;", "proxy_pass http://$tool_upstream;")
    text = _replace_once(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace_once(text, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    text = _replace_once(
        text, "ssl_certificate /etc/nginx/tls/tool.crt;", f"ssl_certificate {cert};"
    )
    return _replace_once(
        text, "ssl_certificate_key /etc/nginx/tls/tool.key;", f"ssl_certificate_key {key};"
    )


@dataclass
class RunningNginx:
    url: str
    http_url: str
    run_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def access_log(self) -> Path:
        return self.run_dir / "access.log"

    def access_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_nginx(
    binary: str, run_dir: Path, upstreams: list[str], cert: Path, key: Path, https_port: int
) -> RunningNginx:
    run_dir.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            https_port=https_port,
            http_port=http_port,
            upstreams=upstreams,
            cert=cert,
            key=key,
            run_dir=run_dir,
        )
    )
    base = [binary, "-p", str(run_dir), "-e", str(run_dir / "error.log"), "-c", str(conf)]
    tested = subprocess.run(
        [*base, "-t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, f"nginx -t refused the rendered config:\n{tested.stderr}"
    with (run_dir / "nginx.out").open("wb") as out:
        process = subprocess.Popen(
            [*base, "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    nginx = RunningNginx(
        url=f"https://127.0.0.1:{https_port}",
        http_url=f"http://127.0.0.1:{http_port}",
        run_dir=run_dir,
        process=process,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(nginx.url + "/healthz", timeout=2, verify=trusting(cert))
            return nginx
        except httpx.TransportError:
            time.sleep(0.05)
    nginx.stop()
    log = (run_dir / "error.log").read_text() if (run_dir / "error.log").exists() else ""
    raise RuntimeError(f"nginx did not start:\n{log}")


# --- a private PostgreSQL ------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb into a temporary directory, a free port),
    run as the ``postgres`` user when the test runs as root. Stopping it disturbs nobody."""

    bin_dir: Path
    data_dir: Path
    port: int
    log_path: Path
    as_user: str | None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=check, timeout=120
        )

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off "
            "-c max_connections=100"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        status = self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status", check=False
        )
        return status.returncode == 0


def start_private_postgres() -> PrivatePostgres:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin)"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    as_user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="adaptive-lti-pg-"))
    if as_user:
        shutil.chown(root, user=as_user)
    server = PrivatePostgres(bin_dir, root / "data", free_port(), root / "server.log", as_user)
    server.init()
    server.start()
    return server


def remove_private_postgres(server: PrivatePostgres) -> None:
    if server.running():
        server.stop("immediate")
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)
