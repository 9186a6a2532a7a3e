"""One daemon per user: find a running one, hold the instance lock, talk to it as a client."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

from shim import wire


class InstanceLock:
    """An flock held for the daemon's lifetime; the kernel releases it if the daemon dies."""

    def __init__(self, runtime_dir: str) -> None:
        self._path = os.path.join(runtime_dir, "daemon.lock")
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; never through a link, the file 0600 (it is in our 0700 dir)."""
        if sys.platform == "win32":  # the directory is under the profile, which its ACL keeps private
            import msvcrt

            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_BINARY | os.O_NOINHERIT, 0o600)
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError:
                os.close(fd)
                return False
        else:
            import fcntl

            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
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


class ForeignPeer(PermissionError):
    """Something answers on the socket, but the kernel says it is not our user's; nothing was sent."""


def connect(path: str, timeout: float | None) -> socket.socket:
    """A socket connected to the daemon at ``path``, proven to run as us before anything is sent.

    As the shim does (shim.main.connect): the directory must be ours and private, and the peer's uid
    comes from the kernel (on Windows: the pipe server's SID, checked by shim.winpipe). Raises
    ForeignPeer (a PermissionError) for either, OSError otherwise.
    """
    if sys.platform == "win32":
        from shim import winpipe

        try:
            pipe = winpipe.connect(path)
        except PermissionError as exc:
            raise ForeignPeer(exc.strerror or str(exc)) from None
        pipe.settimeout(timeout)
        return pipe  # type: ignore[return-value]  # sendall/recv/settimeout/close, as the code below uses
    problem = wire.check_dir(wire.split_socket_path(path)[0])
    if problem:
        raise ForeignPeer(problem)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        wire.unix_call(sock.connect, path)
        problem = wire.foreign_peer(sock.getsockopt)
        if problem:
            raise ForeignPeer(f"{problem}; nothing was sent. Remove it (`rm {path}`) and try again")
    except BaseException:
        sock.close()
        raise
    return sock


def request(path: str, op: str, *, timeout: float | None = 5.0, **fields: Any) -> Iterator[dict[str, Any]]:
    """Send one request and yield its reply lines as dicts (the last is the final one)."""
    sock = connect(path, timeout)
    try:
        sock.sendall(json.dumps({"v": wire.PROTOCOL_VERSION, "op": op, **fields}).encode() + b"\n")
        buf = b""
        while chunk := sock.recv(65536):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield json.loads(line)
            if len(buf) > wire.MAX_REPLY_BYTES:
                raise ValueError(f"a reply line longer than {wire.MAX_REPLY_BYTES} bytes")
        if buf.strip():
            yield json.loads(buf)
    finally:
        sock.close()


def probe(path: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The running daemon's pong (pid, version), or None if nothing answers at ``path``.

    Raises ForeignPeer when what answers is not ours, or its directory is not (it was sent nothing).
    """
    try:
        for reply in request(path, "ping", timeout=timeout):
            if reply.get("type") == "pong":
                return reply
    except ForeignPeer:
        raise
    except (OSError, ValueError):
        pass
    return None
