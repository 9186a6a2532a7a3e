"""The protocol: decode one request line, call the service, write the reply lines.

Transport-agnostic: the server hands it a request line and a ``send`` callable. Every failure becomes
an error reply with a stable code; nothing a client sends can take the daemon down.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.core.errors import BadRequest, Forbidden, KubetrayError, unexpected
from broker.core.model import Parsed, Profile, RequestContext, Token
from broker.core.remote import LOCAL, Caller, RemoteGate, clean_origin
from broker.core.service import TokenService
from broker.core.state import ProfileStatus
from broker.execplugin.execcred import exec_credential, parse_exec_info
from broker.execplugin.kubelogin_args import parse_exec
from broker.ipc import framing
from broker.ipc.request import argv_of, check_text, cwd_of, decode, digest, env_of, indexable
from shim import wire

log = logging.getLogger(__name__)

Send = Callable[[bytes], None]

# What a caller forwarded from another machine may ask: a credential, and whether anyone is there.
# Management (status lists accounts, logout and shutdown disrupt, login opens the desktop's browser
# unasked) stays with the people at the desktop.
REMOTE_OPS = frozenset({"ping", "exec"})


_PROFILE_MEMO = 256


@dataclass
class Handler:
    """Serves the ops of protocol version 1: ping, exec, status, login, refresh, logout, shutdown.

    Every flow is the TokenService's; this only decodes, checks and relays.
    """

    service: TokenService
    version: str = "0"
    info: dict[str, object] = field(default_factory=dict)  # socket, keyring backend, … for status
    on_shutdown: Callable[[], None] | None = None
    remote: RemoteGate | None = None  # local-only profiles and recent remote use; None: no remote policy
    # Remembers (request digest, profile key) for the first answers after a restart (broker/ipc/early.py);
    # called on the executor, for requests that carry no secret. None: nothing is remembered.
    remember: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        # Cached per (apiVersion, token) so the hot path does no JSON encoding.
        self._credential_line = functools.lru_cache(maxsize=64)(self._make_credential_line)
        # The same kubeconfig sends the same arguments thousands of times: remember the profile each
        # distinct call maps to, by a keyed digest, so the hot path skips argparse and nothing secret
        # of the call (--client-secret in argv, AZURE_CLIENT_SECRET) is held as a cache key.
        self._memo_key = secrets.token_bytes(32)
        self._memo: OrderedDict[bytes, tuple[Profile, bool]] = OrderedDict()  # (profile, --local-only)
        self._memo_lock = threading.Lock()

    def _make_credential_line(self, api_version: str, token: Token) -> bytes:
        expiration = self.service.serve_until(token)
        return framing.credential(exec_credential(api_version, token.access_token, expiration))

    async def handle(self, line: bytes, send: Send, caller: Caller = LOCAL) -> None:
        try:
            request = decode(line)
            op = request.get("op")
            method = getattr(self, f"_op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
            if method is None:
                raise BadRequest(f"unknown op {op!r}; this daemon speaks protocol version {wire.PROTOCOL_VERSION}")
            if caller.forwarded and op not in REMOTE_OPS:
                raise Forbidden(f"`{op}` is not served to callers forwarded through {caller.via}; "
                                "run `kubetray` on the desktop where the daemon runs")
            if op == "exec":
                await self._op_exec(request, send, caller)
            else:
                await method(request, send)
        except KubetrayError as exc:
            send(framing.error(exc))
        except Exception as exc:
            send(framing.error(unexpected(log, exc, "internal error in the kubetray daemon")))

    # -- ops ---------------------------------------------------------------------------------------
    async def _op_ping(self, request: dict[str, Any], send: Send) -> None:
        send(framing.reply("pong", pid=os.getpid(), version=self.version))

    async def _op_exec(self, request: dict[str, Any], send: Send, caller: Caller = LOCAL) -> None:
        argv = argv_of(request)
        raw_info = request.get("exec_info")
        if raw_info is not None and not isinstance(raw_info, str):
            raise BadRequest("exec_info must be a string or null")
        if raw_info is not None:
            # The cluster's CA bundle can be large: only the line's own limit applies to it.
            check_text(raw_info, "KUBERNETES_EXEC_INFO", wire.MAX_REQUEST_BYTES)
        env, cwd = env_of(request), cwd_of(request)
        if caller.forwarded:
            # The caller's PATH, proxies, CA bundle, identity endpoint, token files and cwd name things on
            # ANOTHER machine; used here they would pick programs and files on this one. None of it is
            # taken: the daemon's own network applies, and only person sign-ins are served (RemoteGate).
            env, cwd = {}, ""
        info = _parse_info(raw_info)  # a malformed KUBERNETES_EXEC_INFO is bad_request before anything else
        memo = self._memo_digest(argv, env, cwd)
        remembered = self._remembered(memo)
        parsed: Parsed | None = None
        if remembered is None:
            parsed = self._parse_and_remember(memo, argv, env, cwd)
            remembered = (parsed.profile, parsed.local_only)
        profile, local_only = remembered
        origin = clean_origin(request.get("origin"))
        if self.remote is not None:
            self.remote.admit(caller, origin, profile.key, local_only_flag=local_only,
                              person_login=profile.needs_person, login=profile.login)
        token = self.service.cached(profile)
        if token is None:
            parsed = parsed or self._parse_and_remember(memo, argv, env, cwd)
            profile = parsed.profile
            for note in parsed.notes:  # said only when the daemon has to work, not on every call
                send(framing.progress(note))
            if caller.forwarded and profile.needs_person:
                send(framing.progress(
                    f"kubetray: this call came from {origin or 'a remote host'} through {caller.via}; "
                    f"a sign-in opens on the desktop where kubetray runs ({_desktop()}): look there"))
            person = info.interactive if info.interactive is not None else request.get("stdin_tty") is True
            # A forwarded caller's "a person is here" is a claim from another machine, and the sign-in it
            # would start opens on this desktop: it gets the automatic sign-in policy (one attempt until a
            # sign-in completes), never a browser tab on demand.
            person = person and not caller.forwarded
            context = RequestContext(env, cwd, parsed.secrets)
            relay = self._relay(send, said=frozenset(parsed.notes))
            token = await self._await(self.service.get_token(profile, context, person_present=person,
                                                             progress=relay))
        send(self._credential_line(info.api_version, token))

    async def _op_login(self, request: dict[str, Any], send: Send) -> None:
        for profile, context in self._profiles(request, only_needing_sign_in=True):
            token = await self._await(self.service.login(profile, context, progress=self._relay(send)))
            send(framing.reply("signed_in", key=profile.key, account=token.account, expires_on=token.expires_on))
        send(framing.reply("done"))

    async def _op_refresh(self, request: dict[str, Any], send: Send) -> None:
        for profile, _context in self._profiles(request):
            token = await self._await(self.service.refresh(profile.key))
            send(framing.reply("refreshed", key=profile.key, expires_on=token.expires_on))
        send(framing.reply("done"))

    async def _op_logout(self, request: dict[str, Any], send: Send) -> None:
        loop = asyncio.get_running_loop()
        for profile, _context in self._profiles(request):
            try:
                note = await loop.run_in_executor(None, self.service.logout, profile.key)
            finally:  # whatever the keyring said, nothing of the profile stays in this handler
                self._credential_line.cache_clear()
                with self._memo_lock:
                    self._memo.clear()
            send(framing.reply("signed_out", key=profile.key, **({"note": note} if note else {})))
        send(framing.reply("done"))

    async def _op_status(self, request: dict[str, Any], send: Send) -> None:
        profiles = [view.to_json() for view in self.service.snapshot()]
        remote = self.remote.to_json() if self.remote is not None else {"recent": [], "local_only": []}
        send(framing.reply("status", pid=os.getpid(), version=self.version, profiles=profiles,
                           stats=self.service.stats(), remote=remote, **self.info))

    async def _op_remote(self, request: dict[str, Any], send: Send) -> None:
        """Mark profiles local-only (``local_only`` true) or serve them to forwarded callers again."""
        if self.remote is None:
            raise BadRequest("this daemon has no remote-use policy")
        local_only = request.get("local_only")
        if not isinstance(local_only, bool):
            raise BadRequest("local_only must be true or false")
        for profile, _context in self._profiles(request):
            self.remote.mark(profile.key, local_only=local_only)
            send(framing.reply("remote_policy", key=profile.key, local_only=local_only))
        send(framing.reply("done"))

    async def _op_shutdown(self, request: dict[str, Any], send: Send) -> None:
        send(framing.reply("bye"))
        if self.on_shutdown is not None:
            self.on_shutdown()

    # -- helpers -----------------------------------------------------------------------------------
    def _memo_digest(self, argv: list[str], env: Mapping[str, str], cwd: str) -> bytes:
        material = json.dumps([argv, sorted(env.items()), cwd], ensure_ascii=True).encode()
        return hashlib.blake2b(material, key=self._memo_key, digest_size=16).digest()

    def _remembered(self, memo: bytes) -> tuple[Profile, bool] | None:
        with self._memo_lock:
            return self._memo.get(memo)

    def _parse_and_remember(self, memo: bytes, argv: list[str], env: Mapping[str, str], cwd: str) -> Parsed:
        parsed = parse_exec(argv, env, cwd)
        if self.remember is not None and parsed.profile.keeps_sign_in and indexable(env, bool(parsed.secrets)):
            # Indexed without the directory when the profile does not depend on it (no relative path), so
            # the first kubectl after a restart finds it from wherever it runs.
            anywhere = parse_exec(argv, env, "/").profile == parsed.profile
            entry = (digest(argv, env, None if anywhere else cwd), parsed.profile.key)
            asyncio.get_running_loop().run_in_executor(None, self._remember, *entry)
        with self._memo_lock:
            self._memo[memo] = (parsed.profile, parsed.local_only)
            self._memo.move_to_end(memo)
            while len(self._memo) > _PROFILE_MEMO:
                self._memo.popitem(last=False)
        return parsed

    def _remember(self, request_digest: str, key: str) -> None:
        assert self.remember is not None
        try:
            self.remember(request_digest, key)
        except OSError as exc:  # costs only the speed of the first call after the next restart
            log.warning("could not update the request index: %s", exc.strerror)

    @staticmethod
    def _relay(send: Send, said: frozenset[str] = frozenset()) -> Callable[[str], None]:
        """Progress lines to this caller, from the flight's thread; a line it was told already (a note
        such as the --insecure-skip-tls-verify warning, which the sign-in repeats) is not said twice."""
        loop = asyncio.get_running_loop()

        def relay(message: str) -> None:
            if message not in said:
                loop.call_soon_threadsafe(send, framing.progress(message))

        return relay

    @staticmethod
    async def _await(future: Any) -> Token:
        token: Token = await asyncio.wrap_future(future)
        return token

    def _profiles(self, request: dict[str, Any], *,
                  only_needing_sign_in: bool = False) -> list[tuple[Profile, RequestContext | None]]:
        """The profiles a management op names: ``argv`` (like exec), ``key``, or ``all``."""
        if request.get("argv") is not None:
            argv, env, cwd = argv_of(request), env_of(request), cwd_of(request)
            parsed = parse_exec(argv, env, cwd)
            return [(parsed.profile, RequestContext(env, cwd, parsed.secrets))]
        views = self.service.snapshot()
        key = request.get("key")
        if isinstance(key, str) and key:
            matches = [v for v in views if v.key.startswith(key)]
            if len(matches) != 1:
                raise BadRequest(f"no single profile matches {key!r}; `kubetray status` lists them")
            views = matches
        elif only_needing_sign_in and not request.get("all"):
            wanted = (ProfileStatus.SIGN_IN_REQUIRED, ProfileStatus.UNKNOWN, ProfileStatus.ERROR)
            views = [v for v in views if v.state in wanted]
        found = [self.service.profile(v.key) for v in views]
        return [(p, None) for p in found if p is not None]


def _desktop() -> str:
    return socket.gethostname() or "this computer"


_parse_info = functools.lru_cache(maxsize=64)(parse_exec_info)
