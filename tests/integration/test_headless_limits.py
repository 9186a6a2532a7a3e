"""The socket and its limits, on the in-process headless build: who may open it, and the pending cap."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.ipc.server import Limits
from tests.support.headless import Headless
from tests.support.tls import TestCA


@pytest.fixture
def headless(ca: TestCA, tmp_path: Path) -> Iterator[Headless]:
    h = Headless(tmp_path, ca)
    yield h
    h.close()


def test_the_socket_is_0600_in_a_0700_directory_owned_by_the_user(headless: Headless) -> None:
    sock = os.stat(headless.paths.socket)
    assert stat.S_ISSOCK(sock.st_mode)
    assert stat.S_IMODE(sock.st_mode) == 0o600
    assert sock.st_uid == os.getuid()
    directory = os.stat(headless.paths.runtime_dir)
    assert stat.S_IMODE(directory.st_mode) == 0o700 and directory.st_uid == os.getuid()


def test_past_128_pending_connections_the_oldest_are_dropped_and_a_real_client_is_served(
    headless: Headless,
) -> None:
    server = headless.daemon.server
    assert server.dropped_connections == 0
    idle: list[socket.socket] = []
    try:
        for i in range(200):  # none of them ever finishes its request line
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(headless.paths.socket)
            if i % 2:
                s.sendall(b'{"v":1,')
            idle.append(s)
        deadline = time.monotonic() + 60  # until the server has accepted all 200 (no timing asserted)
        while server.dropped_connections < 200 - 128 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.dropped_connections == 200 - 128  # exactly the ones past the cap
        assert headless.ask({"op": "ping"})[0]["type"] == "pong"  # a real client still gets in
        assert server.dropped_connections == 200 - 128 + 1  # …by pushing out one more idle one
        # the dropped ones were the oldest: the first connection is closed, the last is still open
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b""
        idle[-1].setblocking(False)
        with pytest.raises(BlockingIOError):
            idle[-1].recv(1)
    finally:
        for s in idle:
            s.close()


def test_a_connection_that_never_sends_its_request_is_told_so_and_closed(ca: TestCA, tmp_path: Path) -> None:
    h = Headless(tmp_path, ca, limits=Limits(request_timeout=0.2))  # the real limit is 5 s; the rule is the same
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(h.paths.socket)
            s.sendall(b'{"v":1,"op":')  # starts, then goes quiet
            raw = b"".join(iter(lambda: s.recv(65536), b""))  # until the daemon closes it
        (reply,) = [json.loads(line) for line in raw.splitlines()]
        assert reply["code"] == "timeout" and "no complete request" in reply["message"]
        assert h.ask({"op": "ping"})[0]["type"] == "pong"  # and the daemon serves the next one
    finally:
        h.close()
