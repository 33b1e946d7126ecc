"""Start a peer tool for a benchmark run: gunicorn, one sync worker, on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.harness import stop_process

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_pylti1p3_peer(
    workdir: Path, platform_path: str, client_id: str, deployment_id: str, key_set: object
) -> Iterator[tuple[str, int]]:
    """The documented pylti1p3 tool, trusting ``key_set`` for the platform at
    ``<its url><platform_path>``: (its url, gunicorn's worker pid, the process that does the work)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tool_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    config = {
        "issuer": url + platform_path,
        "client_id": client_id,
        "deployment_id": deployment_id,
        "auth_login_url": url + platform_path + "/auth",
        "auth_token_url": url + platform_path + "/token",
        "key_set": key_set,
        "private_key_pem": tool_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "public_key_pem": tool_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }
    config_path = workdir / "pylti1p3-peer.json"
    config_path.write_text(json.dumps(config))
    log_path = workdir / "pylti1p3-peer.log"
    env = {**os.environ, "PYLTI1P3_PEER_CONFIG": str(config_path), "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}", "--pid", str(workdir / "gunicorn.pid"),
        "bench.peers.pylti1p3_flask:create_app()",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        master = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        worker_pid = None
        while worker_pid is None:
            if master.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the pylti1p3 peer did not start:\n{log_path.read_text()}")
            children = Path(f"/proc/{master.pid}/task/{master.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            if pids and _answers(port):
                worker_pid = int(pids[0])
            time.sleep(0.05)
        yield url, worker_pid
    finally:
        stop_process(master)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: peer\r\nConnection: close\r\n\r\n")
            return connection.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
