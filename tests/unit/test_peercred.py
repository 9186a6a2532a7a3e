"""The peer-uid parsers for Linux (struct ucred) and macOS/BSD (struct xucred), and which one a platform
uses. The xucred bytes are packed here from the C declaration, independently of the module's Struct."""

from __future__ import annotations

import os
import socket
import struct
import sys

import pytest

from broker.ipc import peercred, unix
from broker.ipc.peercred import PeerCredError, parse_ucred, parse_xucred

# struct xucred { u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]; }, spelled out:
# standard sizes, no implicit alignment, the 2 padding bytes after the short written as "2x".
XUCRED_C = "=IIh2x16I"


def xucred(uid: int, groups: list[int], *, version: int = 0, ngroups: int | None = None) -> bytes:
    padded = groups + [0] * (16 - len(groups))
    return struct.pack(XUCRED_C, version, uid, len(groups) if ngroups is None else ngroups, *padded)


def ucred(pid: int, uid: int, gid: int) -> bytes:
    return struct.pack("=iII", pid, uid, gid)


def test_xucred_layout_matches_the_c_declaration() -> None:
    assert peercred.XUCRED_SIZE == struct.calcsize(XUCRED_C) == 76


@pytest.mark.parametrize("uid", [0, 501, 65534, 2**32 - 2])
def test_parse_xucred_returns_the_uid(uid: int) -> None:
    assert parse_xucred(xucred(uid, [20, 12, 61, 79])) == uid


def test_parse_xucred_ignores_a_longer_answer() -> None:
    # FreeBSD appends the peer's pid to the struct; only our prefix matters.
    assert parse_xucred(xucred(501, [20]) + struct.pack("=i", 4242)) == 501


@pytest.mark.parametrize(
    "data",
    [
        b"",
        xucred(501, [20])[:-1],  # truncated
        xucred(501, [20], version=1),  # a layout we do not know
        xucred(501, [20], ngroups=17),  # more groups than the array holds
        xucred(501, [20], ngroups=-1),
    ],
    ids=["empty", "short", "version", "too-many-groups", "negative-groups"],
)
def test_parse_xucred_refuses_what_it_cannot_trust(data: bytes) -> None:
    with pytest.raises(PeerCredError):
        parse_xucred(data)


@pytest.mark.parametrize("uid", [0, 1000, 2**31 + 5])
def test_parse_ucred_returns_the_uid_unsigned(uid: int) -> None:
    # uid_t is unsigned: a uid above 2**31 (idmapped containers) must not come back negative.
    assert parse_ucred(ucred(1234, uid, 100)) == uid


def test_parse_ucred_refuses_a_short_answer() -> None:
    with pytest.raises(PeerCredError):
        parse_ucred(ucred(1, 2, 3)[:8])


@pytest.mark.parametrize(
    ("platform", "method"),
    [("linux", "ucred"), ("darwin", "xucred"), ("freebsd14", "xucred"), ("openbsd7", "xucred"),
     ("netbsd10", "xucred"), ("win32", None), ("cygwin", None)],
)
def test_each_platform_has_its_method(platform: str, method: str | None) -> None:
    assert peercred.method(platform) == method


class FakeSockOpt:
    """A getsockopt that records what it was asked and answers with fixed bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.calls: list[tuple[int, int, int]] = []

    def __call__(self, level: int, option: int, buflen: int) -> bytes:
        self.calls.append((level, option, buflen))
        return self.answer


@pytest.mark.parametrize("platform", ["darwin", "freebsd14"])
def test_peer_uid_on_macos_and_bsd_asks_local_peercred(platform: str) -> None:
    fake = FakeSockOpt(xucred(501, [20, 12]))
    assert peercred.peer_uid(fake, platform) == 501
    assert fake.calls == [(0, 0x001, 76)]  # SOL_LOCAL, LOCAL_PEERCRED, sizeof(struct xucred)


def test_peer_uid_on_linux_asks_so_peercred() -> None:
    fake = FakeSockOpt(ucred(77, 1000, 1000))
    assert peercred.peer_uid(fake, "linux") == 1000
    assert fake.calls == [(socket.SOL_SOCKET, peercred.SO_PEERCRED, 12)]


def test_peer_uid_where_no_method_is_known_asks_nothing() -> None:
    fake = FakeSockOpt(b"")
    assert peercred.peer_uid(fake, "win32") is None
    assert fake.calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_PEERCRED is Linux's")
def test_peer_uid_of_a_real_socket_is_ours_and_agrees_with_unix_py() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert peercred.peer_uid(left.getsockopt) == os.getuid() == unix.peer_uid(left)
