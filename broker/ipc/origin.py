"""Tell a forwarded caller from a local one: is the peer process an ssh client or server?

``ssh -R remote.sock:local.sock`` makes the local ssh client connect to the daemon's socket for every
connection on the remote end, so the kernel's SO_PEERCRED pid is that ssh process; a connection relayed
by an sshd session (``ssh -L`` from another machine into this one) has an sshd as its peer. Both are
recognised by the executable's name. What this cannot see: a relay the user runs under another name
(socat, a VS Code server, a container runtime's socket mount); those count as local (docs/security.md).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker.ipc import peercred

if TYPE_CHECKING:
    from broker.core.remote import Caller

# Executable names (basename of /proc/<pid>/exe, or its comm) that relay another machine's connections.
FORWARDERS = frozenset({"ssh", "sshd", "sshd-session"})

ReadLink = Callable[[str], str]
ReadText = Callable[[str], str]


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def process_name(pid: int, *, proc: str = "/proc", readlink: ReadLink = os.readlink,
                 read_text: ReadText = _read_text) -> str:
    """The peer's executable name: /proc/<pid>/exe's basename, else its comm; "" when neither is readable."""
    try:
        exe = readlink(f"{proc}/{pid}/exe")
        name = exe.rsplit("/", 1)[-1].removesuffix(" (deleted)")  # ssh upgraded while running
        if name:
            return name
    except OSError:
        pass
    try:
        return read_text(f"{proc}/{pid}/comm").strip()
    except OSError:
        return ""


def relay(sock: socket.socket) -> str:
    """The relay at the other end of ``sock`` ("ssh", "sshd", …), or "" for a local caller."""
    try:
        pid = peercred.peer_pid(sock.getsockopt)
    except (OSError, peercred.PeerCredError):
        return ""
    name = process_name(pid) if pid is not None and pid > 0 else ""
    return name if name in FORWARDERS else ""


def classify(pid: int | None, name_of: Callable[[int], str] = process_name) -> Caller:
    """A Caller for a peer pid: forwarded when the process is one of FORWARDERS."""
    from broker.core.remote import LOCAL, Caller

    if pid is None or pid <= 0:
        return LOCAL
    name = name_of(pid)
    if name in FORWARDERS:
        return Caller(forwarded=True, via=name, pid=pid)
    return Caller(pid=pid)


def identify(sock: socket.socket) -> Caller:
    """The Caller at the other end of ``sock`` (Linux: from SO_PEERCRED's pid; elsewhere: local)."""
    from broker.core.remote import LOCAL

    try:
        pid = peercred.peer_pid(sock.getsockopt)
    except (OSError, peercred.PeerCredError):
        return LOCAL
    return classify(pid)
