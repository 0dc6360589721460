"""The common part of the local API emulators: a JSON-over-HTTP(S) server on 127.0.0.1 in a thread.

An emulator subclasses ``JsonApiServer`` and implements either ``answer(path, query, host)`` (GET
only, the simple read APIs) or ``handle(request)`` (any method, request body and headers, response
headers: what Compute Engine, BigQuery and Azure Resource Manager need), and ``error_body`` in its
API's error shape. This class runs the server, records requests and lets a test inject failures
(``fail_next``). Nagle is off on the handler: with it, every keep-alive request costs ~40 ms
instead of ~2 ms (../shared/design/TESTING.md).

``tls=True`` serves HTTPS with a certificate made at start by a throw-away CA (``trustme``); the
CA's PEM file is ``ca_path`` — what a client passes as ``connection_verify`` / ``REQUESTS_CA_BUNDLE``.
azure-core refuses to send bearer tokens over plain HTTP, so the Azure emulator needs this.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    method: str  # GET, POST, PUT, PATCH, DELETE
    path: str  # without the query string, percent-decoding left to the emulator
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    host: str  # "127.0.0.1:PORT": what absolute URLs in answers (nextLink, operations) must use
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def json(self) -> Any:
        """The body parsed as JSON (None when empty); ``ValueError`` when it is not JSON."""
        return json.loads(self.body) if self.body.strip() else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


class JsonApiServer:
    """Start with ``start()``/``stop()`` or as a context manager; ``url`` is ``http(s)://127.0.0.1:PORT``."""

    name = "emulator"  # for thread names and logs
    content_type = "application/json; charset=utf-8"

    def __init__(self, *, tls: bool = False) -> None:
        self.requests: list[str] = []  # "METHOD /path?query" per request answered
        self.tls = tls
        self.ca_path: str | None = None  # the CA bundle to trust (tls only), set by start()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._failures: list[tuple[int, str]] = []
        self._holds: list[tuple[str, float]] = []
        self.arrived: list[str] = []  # "METHOD /path?query" as each request arrives (before it is answered)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- for subclasses ------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, list[str]], host: str) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def handle(self, request: Request) -> Response:
        """Answer one request; the default serves GETs through ``answer`` and refuses other methods."""
        if request.method != "GET":
            return Response(405, self.error_body(405, f"method {request.method} not allowed on {request.path}"))
        status, body = self.answer(request.path, request.query, request.host)
        return Response(status, body)

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
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` (what a gRPC channel or an ``api_endpoint`` without scheme takes)."""
        return self.url.split("://", 1)[1]

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if self.tls:
            self._server.socket = self._tls_context().wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=self.name, daemon=True).start()
        return self

    def _tls_context(self) -> ssl.SSLContext:
        import trustme  # only the HTTPS emulators need it (extras 'demo' and 'dev')

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._tmp = tempfile.TemporaryDirectory(prefix="costagent-emulator-")
        self.ca_path = os.path.join(self._tmp.name, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def fail_next(self, status: int, count: int = 1, message: str = "injected failure") -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (401, 403, 404, 429, 500, 503, ...)."""
        with self._lock:
            self._failures.extend([(status, message)] * count)

    def hold_next(self, fragment: str, seconds: float) -> None:
        """Handle the next request containing ``fragment`` (e.g. ``"POST /compute"`` or ``"/stop"``) at once, then
        wait ``seconds`` before answering it: the change is made while the client still waits, as when a
        process is killed between its call and the reply."""
        with self._lock:
            self._holds.append((fragment, seconds))

    def held_for(self, line: str) -> float:
        with self._lock:
            for i, (fragment, seconds) in enumerate(self._holds):
                if fragment in line:
                    del self._holds[i]
                    return seconds
        return 0.0

    def count(self, fragment: str = "") -> int:
        """How many answered requests contain ``fragment`` (matched against "METHOD /path?query")."""
        with self._lock:
            return sum(fragment in r for r in self.requests)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a process stopped or killed) is the client's business, not an
        error of the emulator: no traceback on stderr for it."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    emulator: JsonApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = "{}:{}".format(*self.server.server_address[:2])
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                          {k.lower(): v for k, v in self.headers.items()}, body, host,
                          "https" if self.emulator.tls else "http")
        line = f"{self.command} {self.path}"
        with self.emulator._lock:
            self.emulator.arrived.append(line)
        hold = self.emulator.held_for(line)
        failed = self.emulator.injected_failure()
        if failed is not None:
            response = Response(failed[0], failed[1], {"Retry-After": "0"} if failed[0] == 429 else {})
        else:
            try:
                response = self.emulator.handle(request)
            except Exception as exc:  # an emulator bug must answer, not hang the client
                log.exception("event=emulator_error server=%s path=%s", self.emulator.name, self.path)
                response = Response(500, self.emulator.error_body(500, f"emulator error: {exc}"))
        with self.emulator._lock:
            self.emulator.requests.append(line)
        if hold:
            time.sleep(hold)
        payload = response.body if isinstance(response.body, bytes) else (
            b"" if response.body is None else json.dumps(response.body).encode())
        self.send_response(response.status)
        headers = {"Content-Type": self.emulator.content_type, **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("event=emulator_request server=%s %s", self.emulator.name, format % args)
