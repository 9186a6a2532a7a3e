"""The first answers of a daemon that has just started (broker/ipc/early.py), on a real Unix socket in
this process: what it serves, and that everything else reaches the full server with its request unread.
The request index they rely on, and what the handler lets into it."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.execplugin.execcred import rfc3339
from broker.ipc import early, unix
from broker.ipc.request import digest, indexable
from broker.store.request_index import JsonRequestIndex
from shim import wire
from shim.main import encode_request
from tests.support.probes import read_line

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets; Windows serves a named pipe, which "
                                "has no first answers (the vault is read once the keyring has loaded)")

ARGV = ["get-token", "--login", "interactive", "--server-id", "srv", "--client-id", "cli", "--tenant-id", "t"]
NOW = 1_800_000_000.0


def _line(argv: list[str] = ARGV, **fields: Any) -> bytes:
    if fields:
        return json.dumps({"v": wire.PROTOCOL_VERSION, **fields}).encode() + b"\n"
    return encode_request(argv, {})


class Phase:
    """FirstAnswers with scripted collaborators, and the calls they saw."""

    def __init__(self) -> None:
        self.index: dict[str, str] = {digest(ARGV, {}, None): "key-1"}
        self.entries: dict[str, dict[str, Any]] = {
            "key-1": {"access_token": "kept-token", "serve_until": NOW + 600, "expires_on": NOW + 720}}
        self.signed_out: set[str] = set()
        self.peer_ok = True
        self.relay = ""
        self.reads: list[str] = []

    def kept(self, key: str) -> dict[str, Any] | None:
        self.reads.append(key)
        return self.entries.get(key)

    def answers(self, peek_wait: float = early.PEEK_WAIT) -> early.FirstAnswers:
        return early.FirstAnswers(
            profile_of=lambda digests: next((self.index[d] for d in digests if d in self.index), None),
            kept=self.kept, needs_sign_in=lambda key: key in self.signed_out,
            peer_ok=lambda conn: self.peer_ok, relay=lambda conn: self.relay, now=lambda: NOW,
            peek_wait=peek_wait)


@pytest.fixture
def socket_path(tmp_path: Path) -> str:
    (tmp_path / "run").mkdir(mode=0o700)
    return str(tmp_path / "run" / "kubetray.sock")


@pytest.fixture
def listener(socket_path: str) -> Iterator[socket.socket]:
    """The daemon's own listener (broker/ipc/unix.py: 0600, and bound through its directory when the
    path is too long, as on macOS runners) in the test's private directory."""
    sock = unix.listen(socket_path)
    yield sock
    sock.close()


def _clients(path: str, lines: list[bytes]) -> list[socket.socket]:
    """Connect and send each line (all queued before the phase runs, as callers waiting on a start are)."""
    clients = []
    for line in lines:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        wire.unix_call(c.connect, path)
        c.sendall(line)
        clients.append(c)
    return clients


def _reply(client: socket.socket) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(read_line(client))
    return reply


def _unread(conn: socket.socket, size: int) -> bytes:
    conn.settimeout(5)
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_a_known_request_with_a_servable_kept_token_is_answered(listener: socket.socket, socket_path: str) -> None:
    phase = Phase()
    clients = _clients(socket_path, [_line(), _line()])
    handover = phase.answers().run(listener, first_wait=5)
    assert handover == []
    for client in clients:
        reply = _reply(client)
        assert reply["type"] == "credential"
        assert reply["body"]["status"] == {"token": "kept-token", "expirationTimestamp": rfc3339(NOW + 600)}
        assert reply["body"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"  # no exec info: client-go's
        client.close()
    assert phase.reads == ["key-1"]  # read once for the whole burst


@pytest.mark.parametrize("case", ["unknown request", "needs sign-in", "not servable any more", "nothing kept",
                                  "another op", "malformed", "another user", "forwarded"])
def test_anything_else_is_handed_over_unread_and_ends_the_phase(listener: socket.socket, socket_path: str,
                                                                case: str) -> None:
    phase = Phase()
    line = _line()
    if case == "unknown request":
        line = _line([*ARGV, "--login-hint", "bob@example.test"])
    elif case == "needs sign-in":
        phase.signed_out.add("key-1")
    elif case == "not servable any more":
        phase.entries["key-1"]["serve_until"] = NOW - 1
    elif case == "nothing kept":
        phase.entries.clear()
    elif case == "another op":
        line = _line(op="status")
    elif case == "malformed":
        line = b'{"v":1,"op":"exec","argv":"not a list"}\n'
    elif case == "another user":
        phase.peer_ok = False
    elif case == "forwarded":
        phase.relay = "ssh"
    first, second = _clients(socket_path, [line, _line()])
    handover = phase.answers().run(listener, first_wait=5)
    assert len(handover) == 1
    assert _unread(handover[0], len(line)) == line  # the full server reads it as if it had accepted it
    handover[0].close()
    # the phase ended there: the next caller waits for the full server, still connected and unanswered
    conn, _ = listener.accept()
    assert _unread(conn, len(_line())) == _line()
    conn.close()
    first.close()
    second.close()


def test_with_nobody_waiting_it_returns_after_first_wait(listener: socket.socket) -> None:
    done = threading.Event()
    result: list[list[socket.socket]] = []

    def run() -> None:
        result.append(Phase().answers().run(listener, first_wait=0.05))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(10) and result == [[]]


def test_a_request_that_never_completes_is_handed_over_after_the_peek_wait(listener: socket.socket,
                                                                           socket_path: str) -> None:
    (client,) = _clients(socket_path, [b'{"v":1,"op":"exec"'])  # no newline, ever
    handover = Phase().answers(peek_wait=0.05).run(listener, first_wait=5)
    assert len(handover) == 1 and _unread(handover[0], 18) == b'{"v":1,"op":"exec"'
    handover[0].close()
    client.close()


def test_the_index_keeps_the_latest_requests_first_and_bounded(tmp_path: Path) -> None:
    index = JsonRequestIndex(str(tmp_path / "state" / "requests.json"), limit=3)
    assert index.lookup(["a"]) is None  # no file yet
    for i in range(5):
        index.remember(f"d{i}", f"k{i}")
    index.remember("d3", "k3b")
    assert index.lookup(["d0"]) is None and index.lookup(["d1"]) is None  # beyond the limit
    assert index.lookup(["nope", "d3"]) == "k3b" and index.lookup(["d4"]) == "k4"
    doc = json.loads((tmp_path / "state" / "requests.json").read_text())
    assert doc["requests"][0] == ["d3", "k3b"] and len(doc["requests"]) == 3
    (tmp_path / "state" / "requests.json").write_text("{not json")
    assert index.lookup(["d3"]) is None  # unreadable: nothing known (and the next write replaces it)


def test_digests_name_the_version_arguments_environment_and_where_it_matters_the_directory() -> None:
    base = digest(ARGV, {"PATH": "/usr/bin"}, None)
    assert base == digest(ARGV, {"PATH": "/usr/bin"}, None)
    assert base != digest(ARGV, {"PATH": "/bin"}, None)
    assert base != digest([*ARGV, "--timeout", "2m"], {"PATH": "/usr/bin"}, None)
    assert base != digest(ARGV, {"PATH": "/usr/bin"}, "/home/alice")
    assert indexable({"PATH": "/usr/bin", "AAD_LOGIN_METHOD": "devicecode"}, has_secrets=False)
    assert not indexable({"AZURE_CLIENT_SECRET": "x"}, has_secrets=False)
    assert not indexable({"AAD_USER_PRINCIPAL_PASSWORD": "x"}, has_secrets=False)
    assert not indexable({}, has_secrets=True)
