"""The common part of the local API emulators: a JSON-over-HTTP server on 127.0.0.1 in a thread.

An emulator subclasses ``JsonApiServer`` and implements ``answer(path, query, host)`` (and
``error_body`` in its API's error shape); this class runs the server, records requests and lets a
test inject failures (``fail_next``). Nagle is off on the handler: with it, every keep-alive request
costs ~40 ms instead of ~2 ms (../shared/design/TESTING.md).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


class JsonApiServer:
    """Start with ``start()``/``stop()`` or as a context manager; ``url`` is ``http://127.0.0.1:PORT``."""

    name = "emulator"  # for thread names and logs
    content_type = "application/json; charset=utf-8"

    def __init__(self) -> None:
        self.requests: list[str] = []  # "GET /path?query" per request answered
        self._failures: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- for subclasses ------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, list[str]], host: str) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message}}

    def injected_failure(self) -> tuple[int, dict[str, Any]] | None:
        """The next injected failure as (status, body), if a test asked for one."""
        with self._lock:
            if not self._failures:
                return None
            status, message = self._failures.pop(0)
        return status, self.error_body(status, message)

    # -- control -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def fail_next(self, status: int, count: int = 1, message: str = "injected failure") -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (429, 500, 503, ...)."""
        with self._lock:
            self._failures.extend([(status, message)] * count)

    def count(self, fragment: str = "") -> int:
        """How many answered requests contain ``fragment``."""
        with self._lock:
            return sum(fragment in r for r in self.requests)


class _Handler(BaseHTTPRequestHandler):
    emulator: JsonApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        host = "{}:{}".format(*self.server.server_address[:2])
        failed = self.emulator.injected_failure()
        status, body = failed if failed is not None else self.emulator.answer(parts.path, parse_qs(parts.query), host)
        with self.emulator._lock:
            self.emulator.requests.append(f"GET {self.path}")
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.emulator.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("event=emulator_request server=%s %s", self.emulator.name, format % args)
