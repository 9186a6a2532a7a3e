"""The daemon's first answers: before its server, its parser, its model and its sign-in sources load.

The first kubectl after login, reboot or Quit starts the daemon and waits for it. The token it needs is
usually still good, kept in the keyring beside its sign-in (the TokenVault), and the request is one the
daemon has seen before (the request index remembers which profile each request maps to). So the daemon
binds its socket and, with little more than the standard library's basics and a light keyring reader
loaded, answers the callers already knocking: a local ``exec`` whose digest the index knows, whose
profile is not known to need a sign-in, and whose kept token may still be served, gets its
ExecCredential at once. Everything else — another op, a forwarded caller, a request that is malformed,
incomplete or unknown, a profile without a servable kept token — is not read (only peeked at) and is
handed, untouched, to the full server once it runs, which answers it as always (errors included).

So this adds a fast path and no rules of its own: what is refused here is decided by the same request
checks (broker/ipc/request.py) as later, the profile and token by what the full daemon wrote (the index
only for requests it parsed and admitted, the kept token with the expirationTimestamp its policy set).

This phase ends at the first caller it cannot serve (the full daemon is needed now), when no further
caller is waiting, or after ``first_wait`` with nobody at all (started at login, not by a shim). It
imports no dataclasses, argument parser, asyncio or keyring library: tests/integration/test_first_answer.py.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from broker.core.errors import KubetrayError
from broker.execplugin.execcred import exec_credential, parse_exec_info
from broker.ipc import framing
from broker.ipc.request import argv_of, check_text, cwd_of, decode, digest, env_of
from shim import wire

log = logging.getLogger(__name__)

FIRST_WAIT = 1.0  # for the caller that started the daemon (it connects as soon as the socket answers)
NEXT_WAIT = 0.02  # for callers of the same burst (parallel kubectl calls that queued on the start lock)
PEEK_WAIT = 0.5  # for a connected caller's request line to arrive whole


class FirstAnswers:
    """Answers from the request index and the kept tokens, through the callables it is given:

    ``profile_of(digests)`` the profile key the index has for the first of the digests it knows;
    ``kept(key)`` the vault entry's fields (broker/store/token_vault.py ``read_entry``) or None, never
    waiting for the keyring library; ``needs_sign_in(key)`` what the profile registry says;
    ``peer_ok`` and ``relay`` the server's own checks (the peer's uid; "" for a local caller).
    """

    def __init__(self, *, profile_of: Callable[[list[str]], str | None], kept: Callable[[str], dict[str, Any] | None],
                 needs_sign_in: Callable[[str], bool], peer_ok: Callable[[socket.socket], bool],
                 relay: Callable[[socket.socket], str], now: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, peek_wait: float = PEEK_WAIT) -> None:
        self._profile_of, self._kept, self._needs_sign_in = profile_of, kept, needs_sign_in
        self._peer_ok, self._relay, self._now, self._monotonic = peer_ok, relay, now, monotonic
        self._peek_wait = peek_wait
        self._tokens: dict[str, dict[str, Any]] = {}  # read once per profile in this phase
        self.served = 0

    def run(self, listener: socket.socket, *, first_wait: float = FIRST_WAIT) -> list[socket.socket]:
        """Serve what can be served; return the accepted connections left for the full server."""
        handover: list[socket.socket] = []
        wait = first_wait
        try:
            while True:
                listener.settimeout(wait)
                try:
                    conn, _ = listener.accept()
                except (TimeoutError, BlockingIOError, InterruptedError):
                    break
                if not self._answer(conn):
                    handover.append(conn)
                    break
                wait = NEXT_WAIT
        finally:
            listener.setblocking(False)
        if self.served:
            log.info("answered %d first call(s) from the keyring before loading the rest", self.served)
        return handover

    def _answer(self, conn: socket.socket) -> bool:
        """True when ``conn`` got its credential and is closed; False to hand it over as it is."""
        try:
            if not self._peer_ok(conn) or self._relay(conn):
                return False
            line = _peek_line(conn, self._monotonic() + self._peek_wait, self._monotonic)
            if line is None:
                return False
            reply = self._credential(line)
            if reply is None:
                return False
            _consume(conn, len(line))
            conn.sendall(reply)
        except OSError:
            pass  # the caller went away (it will connect again, or it had given up)
        conn.close()
        self.served += 1
        return True

    def _credential(self, line: bytes) -> bytes | None:
        """The credential reply for ``line``, or None when this phase must not answer it."""
        try:
            request = decode(line)
            if request.get("op") != "exec":
                return None
            argv, env, cwd = argv_of(request), env_of(request), cwd_of(request)
            raw_info = request.get("exec_info")
            if raw_info is not None and not isinstance(raw_info, str):
                return None
            if raw_info is not None:
                check_text(raw_info, "KUBERNETES_EXEC_INFO", wire.MAX_REQUEST_BYTES)
            info = parse_exec_info(raw_info)
        except KubetrayError:
            return None  # the full server answers it, with the same error
        key = self._profile_of([digest(argv, env, None), digest(argv, env, cwd)])
        if key is None or self._needs_sign_in(key):
            return None
        entry = self._tokens.get(key) or self._kept(key)
        if entry is None or self._now() >= entry["serve_until"]:
            return None
        self._tokens[key] = entry
        return framing.credential(exec_credential(info.api_version, entry["access_token"], entry["serve_until"]))


def _peek_line(conn: socket.socket, deadline: float, monotonic: Callable[[], float]) -> bytes | None:
    """The request line, read without consuming it; None if it is not complete by ``deadline``."""
    size = 16 * 1024
    while True:
        remaining = deadline - monotonic()
        if remaining <= 0:
            return None
        conn.settimeout(remaining)
        try:
            data = conn.recv(size, socket.MSG_PEEK)
        except TimeoutError:
            return None
        if not data:
            return None  # closed before a whole line
        end = data.find(b"\n")
        if end >= 0:
            return data[: end + 1]
        if len(data) >= wire.MAX_REQUEST_BYTES:
            return None  # the full server says it is too large
        if len(data) == size:
            size *= 2
        else:
            time.sleep(0.001)  # the rest of the line is on its way (a peek does not wait for more)


def _consume(conn: socket.socket, size: int) -> None:
    """Read what was peeked, so closing after the reply leaves nothing unread (on Linux a socket closed
    with unread data resets its peer)."""
    while size > 0:
        chunk = conn.recv(size)
        if not chunk:
            return
        size -= len(chunk)
