"""A small threaded HTTP(S) server for the demo stand-ins, served from a daemon thread."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    """Shared helpers; ``self.server.app`` is the stand-in object that answers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # the demo's own output is the story; request logs would drown it

    @property
    def app(self) -> Any:
        return self.server.app  # type: ignore[attr-defined]

    @property
    def path_only(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body().decode("utf-8", "replace")))

    def send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, doc: Any) -> None:
        self.send(status, json.dumps(doc).encode(), "application/json")

    def send_html(self, status: int, title: str, body: str) -> None:
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                f"<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>{body}</body></html>")
        self.send(status, page.encode(), "text/html; charset=utf-8")


class Server:
    """``handler`` on 127.0.0.1 (a free port), TLS when ``context`` is given."""

    def __init__(self, handler: type[Handler], app: object, context: ssl.SSLContext | None) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.app = app  # type: ignore[attr-defined]
        if context is not None:
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="kubetray-demo-http", daemon=True)

    def start(self) -> Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
