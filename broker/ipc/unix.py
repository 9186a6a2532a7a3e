"""The Unix domain socket transport: a private directory, a 0600 socket, and the peer's uid.

Everything platform-specific about local sockets lives here; the Windows named pipe is its own module
with the same three duties (secure the endpoint, listen, tell who is calling).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

from broker.core.errors import InsecureRuntimeDir
from broker.ipc import peercred
from shim import wire


def secure_runtime_dir(path: str) -> None:
    """Create ``path`` 0700 if missing; refuse it unless it is a real directory, ours, mode 0700.

    The same check as the shim's (shim.wire.check_dir), so both refuse the same directories with the
    same sentence.
    """
    try:
        problem = wire.check_dir(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            problem = wire.check_dir(path)
        except OSError as exc:
            raise InsecureRuntimeDir(f"cannot create the socket directory {path}: {exc.strerror}") from None
    if problem:
        raise InsecureRuntimeDir(problem)


def listen(path: str, backlog: int = 512) -> socket.socket:
    """Bind a fresh socket at ``path`` (0600 from the start: no window where others could connect).

    A path too long for sockaddr_un (a deep home directory) is bound through its directory's
    descriptor (shim.wire.unix_call), as the shim connects to it.
    """
    if sys.platform == "win32":
        raise OSError("the Unix socket transport is POSIX-only; Windows serves a named pipe")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # the caller has established that nobody answers on it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        wire.unix_call(sock.bind, path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)  # in our own 0700 directory: nobody else can have swapped the name
    sock.listen(backlog)
    return sock


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end, from the kernel (None if the platform cannot say)."""
    return peercred.peer_uid(sock.getsockopt)


def peer_is_owner(sock: socket.socket) -> bool:
    """Only the daemon's own user may ask it for tokens (root included: root gets its own daemon)."""
    if sys.platform == "win32":
        return False
    try:
        uid = peer_uid(sock)
    except (OSError, peercred.PeerCredError):
        return False
    return uid is not None and uid == os.getuid()
