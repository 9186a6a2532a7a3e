"""HTTPS plumbing shared by the rig's stand-ins: a threaded TLS server, request helpers, faults.

Each connection gets its own thread and its TLS handshake happens there, not in the accept loop,
so one stalled client cannot block the others. Responses are HTTP/1.0 (one request per
connection): keep-alive handler threads would otherwise outlive ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["TLSHTTPServer", "ServerThread", "RigHandler", "Fault", "FaultList", "body_bytes"]

_log = logging.getLogger(__name__)
# A client that connects and goes silent must not pin a handler thread (and so stop()) for long.
_SOCKET_TIMEOUT = 10.0


class TLSHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on 127.0.0.1 that wraps each accepted socket in TLS."""

    daemon_threads = True
    block_on_close = True  # stop() joins handler threads: nothing outlives the stand-in

    def __init__(self, handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext, owner: Any) -> None:
        self.tls_context = context
        self.owner = owner  # the stand-in object; handlers reach their state through it
        super().__init__(("127.0.0.1", 0), handler)

    def finish_request(self, request: Any, client_address: Any) -> None:  # noqa: D102
        request.settimeout(_SOCKET_TIMEOUT)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            # Probes and clients that reject our certificate land here; nothing to answer.
            _log.debug("TLS handshake from %s failed: %s", client_address, error)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]  # typeshed's Self
        finally:
            with contextlib.suppress(OSError):  # the client may have gone already
                tls.shutdown(socket.SHUT_RDWR)
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log handler crashes instead of printing tracebacks into the test output."""
        _log.exception("request from %s failed", client_address)


class ServerThread:
    """Runs a TLSHTTPServer's ``serve_forever`` in a daemon thread; ``stop()`` joins everything."""

    def __init__(self, server: TLSHTTPServer, name: str) -> None:
        self.server = server
        # A short poll interval makes stop() quick (serve_forever only notices shutdown between polls).
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://127.0.0.1:{self.server.server_port}"

    def start(self) -> None:
        """Begin serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, wait for in-flight requests, close the socket."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()


def body_bytes(body: Any) -> bytes:
    """A response body from bytes (as is), str (UTF-8) or anything JSON-able."""
    if isinstance(body, bytes):
        return body
    return (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")


@dataclass
class Fault:
    """A canned response that replaces the next ``count`` requests whose path ends with ``suffix``."""

    suffix: str
    status: int
    body: bytes
    headers: dict[str, str]
    count: int


class FaultList:
    """Thread-safe queue of injected faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Arm a fault."""
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str) -> Fault | None:
        """Consume one use of the first armed fault matching ``path``, if any."""
        with self._lock:
            for fault in self._faults:
                if path.endswith(fault.suffix):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()


class RigHandler(BaseHTTPRequestHandler):
    """Request parsing and response writing shared by the stand-ins' handlers."""

    protocol_version = "HTTP/1.0"
    server_version = "kubetray-test-rig"
    sys_version = ""

    @property
    def path_only(self) -> str:
        """The request path without its query string."""
        return urlsplit(self.path).path

    def query(self) -> dict[str, str]:
        """The query string as a dict (last value wins, like most servers)."""
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))

    def body(self) -> bytes:
        """The request body (empty when there is none)."""
        if not hasattr(self, "_body"):
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body as a dict."""
        return dict(parse_qsl(self.body().decode("utf-8"), keep_blank_values=True))

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Write a complete response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """Write ``payload`` as JSON (``application/json; charset=utf-8``, as Entra and Kubernetes do)."""
        body = json.dumps(payload).encode("utf-8")
        self.send_bytes(status, body, "application/json; charset=utf-8", headers)

    def send_fault(self, fault: Fault) -> None:
        """Answer with an injected fault."""
        headers = {k: v for k, v in fault.headers.items() if k.lower() != "content-type"}
        content_type = fault.headers.get("Content-Type", "application/json; charset=utf-8")
        self.send_bytes(fault.status, fault.body, content_type, headers)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from the base class
        """Route access logs to logging instead of stderr (pytest shows them only on failure)."""
        _log.debug("%s %s", self.address_string(), format % args)
