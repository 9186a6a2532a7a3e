"""``kubetray status | login | logout | refresh | stop | whoami``: talk to the daemon, print for people or --json."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from broker.execplugin.execcred import API_V1
from broker.ipc import instance
from broker.kubeconfig import contexts as kcontexts
from broker.kubeconfig.files import KubeconfigError
from broker.process.paths import Paths
from shim.main import is_forwarded
from shim.text import printable


class CliError(Exception):
    """A failure to report as one line; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def ensure_daemon(paths: Paths) -> None:
    """Start the daemon the way the shim does (one, however many ask) unless it answers already."""
    if instance.probe(paths.socket) is not None:
        return
    from shim import launch

    try:
        launch.start_daemon_and_connect(paths.socket).close()
    except launch.LaunchError as exc:
        raise CliError(str(exc), 3) from None


def replies(paths: Paths, op: str, *, timeout: float | None = 10.0, **fields: Any) -> Iterator[dict[str, Any]]:
    """Reply lines of one request; progress lines go to stderr; an error reply raises CliError."""
    try:
        for reply in instance.request(paths.socket, op, timeout=timeout, **fields):
            kind = reply.get("type")
            if kind == "progress":
                print(printable(str(reply.get("message", ""))), file=sys.stderr, flush=True)
            elif kind == "error":
                raise CliError(str(reply.get("message")))
            else:
                yield reply
    except OSError as exc:
        raise CliError(f"lost the connection to the daemon ({exc}); see `kubetray status`") from None


def exec_token(paths: Paths, entry: kcontexts.ExecEntry) -> str:
    """The access token kubectl would get for ``entry``, asked of the daemon as the shim would ask.

    Callers decode it and must never print it.
    """
    if not entry.uses_shim:
        raise CliError(f"context {entry.context!r} does not use kubetray-shim; run "
                       f"`kubetray convert-kubeconfig --context {entry.context}` first", 2)
    ensure_daemon(paths)
    info = {"kind": "ExecCredential", "apiVersion": API_V1, "spec": {"interactive": sys.stdin.isatty()}}
    for reply in replies(paths, "exec", timeout=None, argv=list(entry.args), exec_info=json.dumps(info),
                         stdin_tty=sys.stdin.isatty(), env=caller_env(entry), cwd=os.getcwd()):
        if reply.get("type") == "credential":
            token = (reply.get("body") or {}).get("status", {}).get("token")
            if isinstance(token, str) and token:
                return token
    raise CliError("the daemon answered without a token; see `kubetray status`")


def caller_env(entry: kcontexts.ExecEntry) -> dict[str, str]:
    """What kubectl would give the shim for ``entry`` (its exec.env over our environment), filtered by
    the shim's list: the same profile, the same context, as a kubectl call."""
    merged = {**os.environ, **entry.env}
    return {k: v for k, v in merged.items() if is_forwarded(k)}


def context_entry(kubeconfig: str | None, context: str | None) -> kcontexts.ExecEntry:
    try:
        return kcontexts.exec_entry(kubeconfig, context)
    except KubeconfigError as exc:
        raise CliError(str(exc), 2) from None


# -- commands ------------------------------------------------------------------------------------------
def status(args: argparse.Namespace, paths: Paths) -> int:
    running = instance.probe(paths.socket) is not None
    if not running:
        doc: dict[str, Any] = {"running": False, "socket": paths.socket}
        if args.json:
            print(json.dumps(doc))
        else:
            print(f"daemon: not running (socket {paths.socket}); kubectl starts it, or run `kubetray run`")
        return 3
    (reply,) = [r for r in replies(paths, "status") if r.get("type") == "status"]
    by_key = kcontexts.contexts_by_profile(getattr(args, "kubeconfig", None))
    doc = {"running": True, **{k: v for k, v in reply.items() if k not in ("v", "type")}}
    for p in doc.get("profiles") or []:
        p["contexts"] = by_key.get(p.get("key"), [])
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_status(doc)
    return 0


def signed(args: argparse.Namespace, paths: Paths) -> int:
    """login / logout / refresh / stop: the op, for a profile key, a context, or all."""
    op = {"stop": "shutdown"}.get(args.command, args.command)
    if op != "shutdown" and instance.probe(paths.socket) is None and not (op == "login" and args.context):
        raise CliError(f"the daemon is not running (socket {paths.socket}); start it with `kubetray run`", 3)
    fields: dict[str, Any] = {}
    if getattr(args, "context", None):
        entry = context_entry(args.kubeconfig, args.context)
        fields.update(argv=list(entry.args), env=caller_env(entry), cwd=os.getcwd())
        ensure_daemon(paths)
    elif getattr(args, "profile", None):
        fields["key"] = args.profile
    elif getattr(args, "all", False):
        fields["all"] = True
    elif op == "logout":
        raise CliError("say which profile to sign out of (a key from `kubetray status`), --context NAME or --all", 2)
    if op == "shutdown" and instance.probe(paths.socket) is None:
        print("kubetray is not running")
        return 0
    results = []
    for reply in replies(paths, op, timeout=None if op in ("login", "refresh") else 30.0, **fields):
        if reply.get("type") != "done":
            results.append({k: v for k, v in reply.items() if k != "v"})
            if not getattr(args, "json", False):
                _print_result(reply)
    if getattr(args, "json", False):
        print(json.dumps(results, indent=2))
    elif op in ("login", "refresh", "logout") and not results:
        print(f"nothing to {op}: no profile {'needs it' if op == 'login' else 'matched'}")
    return 0


def whoami(args: argparse.Namespace, paths: Paths) -> int:
    import jwt

    entry = context_entry(args.kubeconfig, args.context)
    token = exec_token(paths, entry)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise CliError("the token is not a JWT, so there is nothing to decode offline", 1) from None
    groups = claims.get("groups")
    doc = {
        "context": entry.context,
        "upn": claims.get("upn") or claims.get("preferred_username") or claims.get("email") or claims.get("sub"),
        "oid": claims.get("oid"), "tenant": claims.get("tid"),
        "groups": len(groups) if isinstance(groups, list) else 0,
        "aud": claims.get("aud"), "appid": claims.get("appid") or claims.get("azp"),
        "exp": claims.get("exp"), "iss": claims.get("iss"),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for name in ("context", "upn", "oid", "tenant", "groups", "aud", "appid", "iss"):
        _say(f"{name + ':':9} {doc[name] if doc[name] is not None else '-'}")
    _say(f"{'exp:':9} {when(doc['exp'])}")
    return 0


# -- output --------------------------------------------------------------------------------------------
def _say(text: str) -> None:
    """One block of human output. What it shows comes from elsewhere too (kubeconfig context names, a
    token's claims, provider errors, a remote shim's host name), so each line is made printable: no
    escape sequence or bidi override reaches the terminal."""
    print("\n".join(printable(line) for line in text.split("\n")))


def when(epoch: object) -> str:
    if not isinstance(epoch, int | float) or not epoch:
        return "never"
    left = epoch - time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
    return f"{stamp} (in {int(left // 60)} min)" if left > 0 else f"{stamp} (expired)"


def _ago(epoch: object) -> str:
    if not isinstance(epoch, int | float) or not epoch:
        return "never"
    return f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(epoch))} ({int((time.time() - epoch) // 60)} min ago)"


def _print_result(reply: dict[str, Any]) -> None:
    kind = reply.get("type")
    if kind == "signed_in":
        _say(f"signed in: {reply.get('account') or reply.get('key')} (expires {when(reply.get('expires_on'))})")
    elif kind == "refreshed":
        _say(f"refreshed {reply.get('key')} (expires {when(reply.get('expires_on'))})")
    elif kind == "signed_out":
        _say(f"signed out {reply.get('key')}: its tokens are gone from the keyring and the daemon")
        if reply.get("note"):
            _say(f"  {reply['note']}")
    elif kind == "bye":
        _say("kubetray stopped")


def _print_status(doc: dict[str, Any]) -> None:
    _say(f"daemon:  running (pid {doc.get('pid')}, kubetray {doc.get('version')})")
    _say(f"socket:  {doc.get('socket')}")
    _say(f"keyring: {doc.get('keyring')}")
    if doc.get("tray"):
        _say(f"tray:    {doc['tray']}")
    net = doc.get("network") or {}
    if net:
        values = ", ".join(f"{k}={v}" for k, v in (net.get("variables") or {}).items())
        values = values or "no proxy or CA variables (direct, system CAs)"
        _say(f"network: {values}; from {net.get('source')}")
    profiles = doc.get("profiles") or []
    remote: dict[str, Any] = doc["remote"] if isinstance(doc.get("remote"), dict) else {}
    local_only = set(remote.get("local_only") or [])
    if not profiles:
        _say("profiles: none yet (they appear after the first kubectl call)")
    for p in profiles:
        _say(f"\n{p['key']}  {p['state']}")
        _say(f"  account:      {p.get('account') or '-'}")
        _say(f"  tenant:       {p.get('tenant_id') or '-'}  (login {p.get('login')})")
        _say(f"  authority:    {p.get('authority')}")
        _say(f"  contexts:     {', '.join(p.get('contexts') or []) or '-'}")
        _say(f"  expires:      {when(p.get('expires_on'))}")
        _say(f"  last refresh: {_ago(p.get('last_refresh'))}")
        if p.get("last_error"):
            _say(f"  problem:      {p['last_error']}")
        if p.get("key") in local_only:
            _say("  remote:       local-only (refused to callers forwarded through ssh)")
    _print_remote(remote)


def _print_remote(remote: dict[str, Any]) -> None:
    """Recent use through a forwarded socket; the host is what the remote shim said (not verified)."""
    recent = remote.get("recent") or []
    if not recent:
        return
    _say("\nremote use (host as the remote shim named it; the ssh relay is what the kernel showed):")
    for use in recent:
        outcome = "refused (local-only)" if use.get("refused") else "served"
        if isinstance(use.get("count"), int) and use["count"] > 1:
            outcome += f" ({use['count']} calls)"
        _say(f"  {_ago(use.get('at'))}  {use.get('origin')} via {use.get('via')}  profile {use.get('profile')}  "
              f"{outcome}")
