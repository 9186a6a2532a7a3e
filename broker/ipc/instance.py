"""One daemon per user: find a running one, hold the instance lock, talk to it as a client."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any, Protocol

from shim import wire


class InstanceLock:
    """An flock held for the daemon's lifetime; the kernel releases it if the daemon dies."""

    def __init__(self, runtime_dir: str) -> None:
        self._path = os.path.join(runtime_dir, "daemon.lock")
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if sys.platform == "win32":  # the named pipe's first-instance flag is the guard there
            return True
        import fcntl

        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Conn(Protocol):
    def sendall(self, data: bytes) -> None: ...
    def recv(self, size: int) -> bytes: ...
    def close(self) -> None: ...


def _connect(path: str, timeout: float | None) -> _Conn:
    if sys.platform == "win32":  # the per-user named pipe; winpipe checks the server's SID
        from shim import winpipe

        return winpipe.connect(path, timeout if timeout is not None else 3600.0)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def request(path: str, op: str, *, timeout: float | None = 5.0, **fields: Any) -> Iterator[dict[str, Any]]:
    """Send one request and yield its reply lines as dicts (the last is the final one)."""
    conn = _connect(path, timeout)
    try:
        conn.sendall(json.dumps({"v": wire.PROTOCOL_VERSION, "op": op, **fields}).encode() + b"\n")
        buf = b""
        while chunk := conn.recv(65536):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield json.loads(line)
        if buf.strip():
            yield json.loads(buf)
    finally:
        conn.close()


def probe(path: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The running daemon's pong (pid, version), or None if nothing answers at ``path``."""
    with contextlib.suppress(OSError, ValueError):
        for reply in request(path, "ping", timeout=timeout):
            if reply.get("type") == "pong":
                return reply
    return None
