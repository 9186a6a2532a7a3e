"""Who is at the other end of a Unix socket: the kernel's answer, parsed without touching a socket.

Linux answers SO_PEERCRED with ``struct ucred``; macOS and FreeBSD answer LOCAL_PEERCRED with
``struct xucred`` (what libc's getpeereid() reads too; Python does not wrap getpeereid). The parsers
live in shim.wire, because the shim checks the daemon the same way before it sends a byte: one
implementation, so daemon and shim cannot disagree about a layout. Here they get the daemon's error
type. Both layouts are unit-tested on any OS; ``peer_uid`` asks through a ``getsockopt`` passed in.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

from shim import wire

SO_PEERCRED = wire.SO_PEERCRED
XU_NGROUPS = wire.XU_NGROUPS
XUCRED_SIZE = wire.XUCRED_SIZE
UCRED_SIZE = wire.UCRED_SIZE
XUCRED_VERSION = wire.XUCRED_VERSION
SOL_LOCAL = wire.SOL_LOCAL
LOCAL_PEERCRED = wire.LOCAL_PEERCRED

GetSockOpt = Callable[[int, int, int], bytes]


class PeerCredError(ValueError):
    """The kernel's answer did not have the expected layout (so the caller must refuse the peer)."""


def parse_ucred(data: bytes) -> int:
    """The uid in a Linux ``struct ucred``."""
    try:
        return wire.parse_ucred(data)
    except ValueError as exc:
        raise PeerCredError(str(exc)) from None


def parse_ucred_pid(data: bytes) -> int:
    """The pid in a Linux ``struct ucred`` (the process that connected, as of connect())."""
    if len(data) < UCRED_SIZE:
        raise PeerCredError(f"struct ucred is {UCRED_SIZE} bytes; got {len(data)}")
    return int.from_bytes(data[0:4], sys.byteorder, signed=True)


def parse_xucred(data: bytes) -> int:
    """The uid in a BSD/macOS ``struct xucred``, after checking its version and group count."""
    try:
        return wire.parse_xucred(data)
    except ValueError as exc:
        raise PeerCredError(str(exc)) from None


def method(platform: str = sys.platform) -> str | None:
    """Which kernel interface tells the peer's uid here: "ucred", "xucred", or None (none known)."""
    return wire.peer_method(platform)


def peer_uid(getsockopt: GetSockOpt, platform: str = sys.platform) -> int | None:
    """The peer's uid via ``getsockopt`` (a connected socket's bound method); None if unknown here.

    Raises OSError from the kernel or PeerCredError for an unreadable answer: callers treat both
    as "not the owner".
    """
    try:
        return wire.peer_uid(getsockopt, platform)
    except OSError:
        raise
    except ValueError as exc:
        raise PeerCredError(str(exc)) from None


def peer_pid(getsockopt: GetSockOpt, platform: str = sys.platform) -> int | None:
    """The peer's pid where the kernel tells it with the uid (Linux); None elsewhere.

    macOS has LOCAL_PEERPID, but kubetray does not ask it yet: there a forwarded caller counts as local.
    """
    if method(platform) == "ucred":
        return parse_ucred_pid(getsockopt(socket.SOL_SOCKET, SO_PEERCRED, UCRED_SIZE))
    return None
