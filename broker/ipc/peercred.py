"""Who is at the other end of a Unix socket: the kernel's answer, parsed without touching a socket.

Linux answers SO_PEERCRED with ``struct ucred``; macOS and FreeBSD answer LOCAL_PEERCRED with
``struct xucred`` (what libc's getpeereid() reads too; Python does not wrap getpeereid). The parsers are
pure functions over the bytes, so both layouts are unit-tested on any OS; ``peer_uid`` asks through a
``getsockopt`` passed in, so the platform choice is tested with a fake instead of a patched socket.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable

# struct ucred { pid_t pid; uid_t uid; gid_t gid; }: uid_t is unsigned, so a uid above 2**31 (common
# with idmapped containers and some directory services) must not come back negative.
UCRED = struct.Struct("=iII")
# Python defines SO_PEERCRED only on Linux, where its value differs by architecture (17 on x86 and
# arm, 21 on powerpc, 18 on mips): take the module's constant, and 17 only where it has none (tests).
SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)

# struct xucred { u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[XU_NGROUPS]; }
# in native alignment (2 bytes of padding after cr_ngroups). FreeBSD may append a pid; we never ask
# for more than this, and the kernel copies at most what was asked for.
XU_NGROUPS = 16
XUCRED = struct.Struct(f"@IIh{XU_NGROUPS}I")
XUCRED_VERSION = 0
SOL_LOCAL = 0
LOCAL_PEERCRED = 0x001

GetSockOpt = Callable[[int, int, int], bytes]


class PeerCredError(ValueError):
    """The kernel's answer did not have the expected layout (so the caller must refuse the peer)."""


def parse_ucred(data: bytes) -> int:
    """The uid in a Linux ``struct ucred``."""
    if len(data) < UCRED.size:
        raise PeerCredError(f"struct ucred is {UCRED.size} bytes; got {len(data)}")
    _pid, uid, _gid = UCRED.unpack_from(data)
    return int(uid)


def parse_ucred_pid(data: bytes) -> int:
    """The pid in a Linux ``struct ucred`` (the process that connected, as of connect())."""
    if len(data) < UCRED.size:
        raise PeerCredError(f"struct ucred is {UCRED.size} bytes; got {len(data)}")
    pid, _uid, _gid = UCRED.unpack_from(data)
    return int(pid)


def parse_xucred(data: bytes) -> int:
    """The uid in a BSD/macOS ``struct xucred``, after checking its version and group count."""
    # The uid sits at a fixed offset, but an answer shorter than the struct, of another version, or
    # with an impossible group count means we are not reading what we think: refuse, never guess.
    if len(data) < XUCRED.size:
        raise PeerCredError(f"struct xucred is {XUCRED.size} bytes; got {len(data)}")
    version, uid, ngroups, *_groups = XUCRED.unpack_from(data)
    if version != XUCRED_VERSION:
        raise PeerCredError(f"struct xucred version {version}, expected {XUCRED_VERSION}")
    if not 0 <= ngroups <= XU_NGROUPS:
        raise PeerCredError(f"struct xucred claims {ngroups} groups (at most {XU_NGROUPS})")
    return int(uid)


def method(platform: str = sys.platform) -> str | None:
    """Which kernel interface tells the peer's uid here: "ucred", "xucred", or None (none known)."""
    if platform.startswith("linux"):
        return "ucred"
    if platform == "darwin" or "bsd" in platform or platform.startswith("dragonfly"):
        return "xucred"
    return None


def peer_uid(getsockopt: GetSockOpt, platform: str = sys.platform) -> int | None:
    """The peer's uid via ``getsockopt`` (a connected socket's bound method); None if unknown here.

    Raises OSError from the kernel or PeerCredError for an unreadable answer: callers treat both
    as "not the owner".
    """
    how = method(platform)
    if how == "ucred":
        return parse_ucred(getsockopt(socket.SOL_SOCKET, SO_PEERCRED, UCRED.size))
    if how == "xucred":
        return parse_xucred(getsockopt(SOL_LOCAL, LOCAL_PEERCRED, XUCRED.size))
    return None


def peer_pid(getsockopt: GetSockOpt, platform: str = sys.platform) -> int | None:
    """The peer's pid where the kernel tells it with the uid (Linux); None elsewhere.

    macOS has LOCAL_PEERPID, but kubetray does not ask it yet: there a forwarded caller counts as local.
    """
    if method(platform) == "ucred":
        return parse_ucred_pid(getsockopt(socket.SOL_SOCKET, SO_PEERCRED, UCRED.size))
    return None
