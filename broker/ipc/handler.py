"""The protocol: decode one request line, call the service, write the reply lines.

Transport-agnostic: the server hands it a request line and a ``send`` callable. Every failure becomes
an error reply with a stable code; nothing a client sends can take the daemon down.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.core.errors import BadRequest, Forbidden, KubetrayError, UnsupportedVersion, unexpected
from broker.core.model import Parsed, Profile, SecretBag, Token
from broker.core.remote import LOCAL, Caller, RemoteGate, clean_origin
from broker.core.service import TokenService
from broker.execplugin.execcred import exec_credential, parse_exec_info
from broker.execplugin.kubelogin_args import parse_exec
from broker.ipc import framing
from shim import wire

log = logging.getLogger(__name__)

Send = Callable[[bytes], None]

# What a caller forwarded from another machine may ask: a credential, and whether anyone is there.
# Management (status lists accounts, logout and shutdown disrupt, login opens the desktop's browser
# unasked) stays with the people at the desktop.
REMOTE_OPS = frozenset({"ping", "exec"})


@dataclass
class Handler:
    """Serves the ops of protocol version 1: ping, exec, status, login, refresh, logout, shutdown."""

    service: TokenService
    version: str = "0"
    info: dict[str, object] = field(default_factory=dict)  # socket, keyring backend, … for status
    on_shutdown: Callable[[], None] | None = None
    on_logout: Callable[[Profile], str | None] | None = None  # returns a note (e.g. how revocation went)
    secrets: SecretBag | None = None  # where secrets a shim passed are kept (memory only)
    remote: RemoteGate | None = None  # local-only profiles and recent remote use; None: no remote policy

    def __post_init__(self) -> None:
        # Cached per (apiVersion, token) so the hot path does no JSON encoding.
        self._credential_line = functools.lru_cache(maxsize=64)(self._make_credential_line)

    def _make_credential_line(self, api_version: str, token: Token) -> bytes:
        expiration = self.service.serve_until(token)
        return framing.credential(exec_credential(api_version, token.access_token, expiration))

    async def handle(self, line: bytes, send: Send, caller: Caller = LOCAL) -> None:
        try:
            request = self._decode(line)
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

    @staticmethod
    def _decode(line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the request is not a JSON line") from None
        if not isinstance(request, dict):
            raise BadRequest("the request must be a JSON object")
        if request.get("v") != wire.PROTOCOL_VERSION:
            raise UnsupportedVersion(
                f"protocol version {request.get('v')!r} is not supported (this daemon speaks "
                f"{wire.PROTOCOL_VERSION}); restart the daemon after upgrading: `kubetray stop`"
            )
        return request

    # -- ops ---------------------------------------------------------------------------------------
    async def _op_ping(self, request: dict[str, Any], send: Send) -> None:
        send(framing.reply("pong", pid=os.getpid(), version=self.version))

    async def _op_exec(self, request: dict[str, Any], send: Send, caller: Caller = LOCAL) -> None:
        argv = request.get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise BadRequest("argv must be a list of strings")
        raw_info = request.get("exec_info")
        if raw_info is not None and not isinstance(raw_info, str):
            raise BadRequest("exec_info must be a string or null")
        parsed = self._parse(request, argv)
        profile = parsed.profile
        origin = clean_origin(request.get("origin"))
        if self.remote is not None:
            self.remote.admit(caller, origin, profile.key, local_only_flag=parsed.local_only)
        info = _parse_info(raw_info)
        token = self.service.cached(profile)
        if token is None:
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
            token = await self._await(self.service.get_token, profile, send, person_present=person)
        send(self._credential_line(info.api_version, token))

    async def _op_login(self, request: dict[str, Any], send: Send) -> None:
        for profile in self._profiles(request, only_needing_sign_in=True):
            token = await self._await(self.service.login, profile, send)
            send(framing.reply("signed_in", key=profile.key, account=token.account, expires_on=token.expires_on))
        send(framing.reply("done"))

    async def _op_refresh(self, request: dict[str, Any], send: Send) -> None:
        for profile in self._profiles(request):
            fut = self.service.refresh(profile.key)
            token = await asyncio.wrap_future(fut)
            send(framing.reply("refreshed", key=profile.key, expires_on=token.expires_on))
        send(framing.reply("done"))

    async def _op_logout(self, request: dict[str, Any], send: Send) -> None:
        for profile in self._profiles(request):
            note = None
            if self.on_logout is not None:
                note = await asyncio.get_running_loop().run_in_executor(None, self.on_logout, profile)
            self.service.forget_token(profile.key)
            self._credential_line.cache_clear()
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
        for profile in self._profiles(request):
            self.remote.mark(profile.key, local_only=local_only)
            send(framing.reply("remote_policy", key=profile.key, local_only=local_only))
        send(framing.reply("done"))

    async def _op_shutdown(self, request: dict[str, Any], send: Send) -> None:
        send(framing.reply("bye"))
        if self.on_shutdown is not None:
            self.on_shutdown()

    # -- helpers -----------------------------------------------------------------------------------
    def _parse(self, request: dict[str, Any], argv: list[str]) -> Parsed:
        """Parse argv with the caller's environment and cwd; keep any secrets it carried in memory."""
        env, cwd = request.get("env") or {}, request.get("cwd") or ""
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise BadRequest("env must be an object of strings")
        if not isinstance(cwd, str):
            raise BadRequest("cwd must be a string")
        # Only the variables kubelogin reads matter; the rest would only split the parse cache.
        relevant = tuple(sorted((k, v) for k, v in env.items() if k.startswith(wire.FORWARDED_ENV_PREFIXES)
                                and not k.startswith("KUBELOGIN_")))
        parsed = _parse_exec(tuple(argv), relevant, cwd)
        if self.secrets is not None:
            self.secrets.put(parsed.profile.key, parsed.secrets)
        return parsed

    async def _await(self, start: Callable[..., Any], profile: Profile, send: Send, **kwargs: Any) -> Token:
        loop = asyncio.get_running_loop()

        def relay(message: str) -> None:
            loop.call_soon_threadsafe(send, framing.progress(message))

        token: Token = await asyncio.wrap_future(start(profile, progress=relay, **kwargs))
        return token

    def _profiles(self, request: dict[str, Any], *, only_needing_sign_in: bool = False) -> list[Profile]:
        """The profiles a management op names: ``argv`` (like exec), ``key``, or ``all``."""
        if isinstance(request.get("argv"), list):
            return [self._parse(request, [str(a) for a in request["argv"]]).profile]
        views = self.service.snapshot()
        key = request.get("key")
        if isinstance(key, str) and key:
            matches = [v for v in views if v.key.startswith(key)]
            if len(matches) != 1:
                raise BadRequest(f"no single profile matches {key!r}; `kubetray status` lists them")
            views = matches
        elif only_needing_sign_in and not request.get("all"):
            views = [v for v in views if v.state in ("sign_in_required", "unknown", "error")]
        found = [self.service.profile(v.key) for v in views]
        return [p for p in found if p is not None]


def _desktop() -> str:
    return socket.gethostname() or "this computer"


# The same kubeconfig sends the same arguments thousands of times: parse each distinct one once.
# (lru_cache does not cache exceptions, so bad arguments are re-checked and re-reported every time.)
_parse_exec = functools.lru_cache(maxsize=256)(
    lambda argv, env, cwd: parse_exec(list(argv), dict(env), cwd)
)
_parse_info = functools.lru_cache(maxsize=64)(parse_exec_info)

