"""A platform's key set URL on a real loopback socket, for the tests of fetches under failure.

``LoopbackJwks`` is a tiny threaded HTTP server on 127.0.0.1 that counts every connection it
accepts. It serves a JWKS (``mode = "ok"``), or accepts connections and never answers
(``"hang"``, a platform whose web server is stuck). ``refused_url()`` gives a URL on a port where
nothing listens (a platform that is down: the connection is refused).

Nothing here is imported by the project.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CERTS_PATH = "/mod/lti/certs.php"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    owner: LoopbackJwks

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        return connection, address


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        if owner.mode == "hang":
            # Hold the connection open without a byte of answer until the test ends.
            owner.released.wait(timeout=120)
            return
        body = json.dumps({"keys": owner.keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class LoopbackJwks:
    """``with LoopbackJwks(keys) as server:`` serves ``server.url`` until the block ends."""

    def __init__(self, keys: list[dict[str, Any]], *, mode: str = "ok") -> None:
        self.keys = keys
        self.mode = mode
        self.connections = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{CERTS_PATH}"

    def __enter__(self) -> LoopbackJwks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def refused_url() -> str:
    """A key set URL on a loopback port where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{CERTS_PATH}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
