"""The daemon's first answers: before its server, its Handler and its sign-in sources exist.

The first kubectl after login, reboot or Quit starts the daemon and waits for it. The token it needs is
usually still good, kept in the keyring beside its sign-in (the TokenVault). So the daemon binds its
socket and, with nothing but the standard library, the argument parser and a light keyring reader
loaded, answers the callers already knocking: each local ``exec`` whose profile has a servable token in
the vault gets its ExecCredential at once. Everything else — another op, a forwarded caller, a
request that is malformed or incomplete, a profile without a servable saved token — is not read (only
peeked at) and is handed, untouched, to the full server once it runs, which answers it as always
(errors included). So this adds a fast path and no second set of rules: what is refused here is
decided by the same request checks (broker/ipc/request.py), the same parser and the same
TokenService as later.

This phase ends at the first caller it cannot serve (the full daemon is needed now), when no further
caller is waiting, or after ``first_wait`` with nobody at all (started at login, not by a shim).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from broker.core.errors import KubetrayError
from broker.core.model import Parsed, RequestContext, Token
from broker.core.remote import LOCAL, Caller, RemoteGate, clean_origin
from broker.core.service import TokenService
from broker.execplugin.execcred import exec_credential, parse_exec_info
from broker.ipc import framing
from broker.ipc.request import argv_of, check_text, cwd_of, decode, env_of
from shim import wire

log = logging.getLogger(__name__)

FIRST_WAIT = 1.0  # for the caller that started the daemon (it connects as soon as the socket answers)
NEXT_WAIT = 0.02  # for callers of the same burst (parallel kubectl calls that queued on the start lock)
PEEK_WAIT = 0.5  # for a connected caller's request line to arrive whole


@dataclass
class FirstAnswers:
    """Answers from ``load_saved`` (the vault's read, which never waits for the keyring library)."""

    service: TokenService
    load_saved: Callable[[str], Token | None]
    parse: Callable[[list[str], dict[str, str], str], Parsed]
    peer_ok: Callable[[socket.socket], bool]
    identify: Callable[[socket.socket], Caller]
    remote: RemoteGate | None = None
    monotonic: Callable[[], float] = time.monotonic
    served: int = 0

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
            log.info("answered %d first call(s) from the keyring before loading the sign-in sources", self.served)
        return handover

    def _answer(self, conn: socket.socket) -> bool:
        """True when ``conn`` got its credential and is closed; False to hand it over as it is."""
        try:
            if not self.peer_ok(conn) or self.identify(conn).forwarded:
                return False
            line = _peek_line(conn, self.monotonic() + PEEK_WAIT, self.monotonic)
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
            parsed = self.parse(argv, env, cwd)
            profile = parsed.profile
            if not profile.keeps_sign_in:
                return None
            if self.remote is not None:
                self.remote.admit(LOCAL, clean_origin(request.get("origin")), profile.key,
                                  local_only_flag=parsed.local_only, person_login=profile.needs_person,
                                  login=profile.login)
            token = self.service.cached(profile)
            if token is None:
                saved = self.load_saved(profile.key)
                if saved is None or not self.service.adopt(profile, RequestContext(env, cwd, parsed.secrets), saved):
                    return None
                token = saved
        except KubetrayError:
            return None  # the full server answers it, with the same error
        return framing.credential(exec_credential(info.api_version, token.access_token,
                                                  self.service.serve_until(token)))


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
