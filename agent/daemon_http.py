"""The daemon's local HTTP endpoint: ``GET /healthz`` (JSON; 200 healthy, 503 stopping or unhealthy) and
``GET /metrics`` (Prometheus text, ``prometheus_client``'s WSGI app). Served by the standard library's WSGI
server on a thread per request; requests are not logged (probes would flood the log)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def app(health: Callable[[], tuple[bool, dict[str, Any]]], registry: CollectorRegistry) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path in ("/healthz", "/health"):
            ok, body = health()
            data = (json.dumps(body, indent=None) + "\n").encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store")])
            return [data]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /healthz or /metrics\n"]

    return serve


class HttpEndpoint:
    def __init__(self, listen: str, health: Callable[[], tuple[bool, dict[str, Any]]],
                 registry: CollectorRegistry) -> None:
        host, _, port = listen.rpartition(":")
        self.server = make_server(host.strip("[]"), int(port), app(health, registry), server_class=_Server,
                                  handler_class=_Quiet)
        self.address = f"{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="costagent-http", daemon=True)

    def start(self) -> HttpEndpoint:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


__all__ = ["HttpEndpoint", "app"]
