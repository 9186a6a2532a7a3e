"""``kubetray``: run the daemon and manage it. Turns errors into one line and an exit status."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from broker import __version__
from broker.paths import Paths

EPILOG = """examples:
  kubetray run                 start the broker in the foreground (kubectl starts it on demand too)
  kubetray status              show the daemon and every profile it serves
  kubetray login               sign in to every profile that needs it
  kubetray logout --all        remove every token from the keyring
  kubetray stop                stop the daemon (the next kubectl call starts it again)
  kubetray shim-path           print the shim's fast launcher path, for a kubeconfig's `command:`
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubetray", description="Credential broker for kubectl.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"kubetray {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run the broker daemon")
    run.add_argument("--headless", action="store_true", help="no tray icon, even when a display is available")
    run.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)  # used by the shim
    status = sub.add_parser("status", help="show the daemon and its profiles")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    login = sub.add_parser("login", help="sign in now (joins a sign-in already running)")
    login.add_argument("profile", nargs="?", help="profile key (prefix) from `kubetray status`")
    login.add_argument("--all", action="store_true", help="sign in to every known profile")
    logout = sub.add_parser("logout", help="remove a profile's tokens from the keyring")
    logout.add_argument("profile", nargs="?")
    logout.add_argument("--all", action="store_true")
    refresh = sub.add_parser("refresh", help="refresh tokens now")
    refresh.add_argument("profile", nargs="?")
    sub.add_parser("stop", help="stop the daemon")
    sub.add_parser("shim-path", help="write the fast shim launcher and print its path (for kubeconfigs)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        sys.exit(_dispatch(args))
    except KeyboardInterrupt:
        sys.exit(130)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from broker.app import run

        return run(detach=args.detach, foreground_log=not args.detach)
    if args.command is None:
        _parser().print_help()
        return 0
    if args.command == "shim-path":
        from broker.launcher import ensure_launcher

        print(ensure_launcher())
        return 0
    paths = Paths.default()
    from broker.ipc import instance

    if instance.probe(paths.socket) is None:
        if args.command == "status" and args.json:
            print(json.dumps({"running": False, "socket": paths.socket}))
            return 3
        print(f"kubetray: the daemon is not running (socket {paths.socket}); start it with `kubetray run`",
              file=sys.stderr)
        return 3
    fields: dict[str, Any] = {}
    if getattr(args, "profile", None):
        fields["key"] = args.profile
    if getattr(args, "all", False):
        fields["all"] = True
    op = {"stop": "shutdown"}.get(args.command, args.command)
    timeout = None if op in ("login", "refresh") else 10.0
    status = 0
    try:
        for reply in instance.request(paths.socket, op, timeout=timeout, **fields):
            status = _show(reply, args)
    except OSError as exc:
        print(f"kubetray: lost the connection to the daemon ({exc}); see `kubetray status`", file=sys.stderr)
        return 1
    return status


def _show(reply: dict[str, Any], args: argparse.Namespace) -> int:
    kind = reply.get("type")
    if kind == "error":
        print(f"kubetray: {reply.get('message')}", file=sys.stderr)
        return 1
    if kind == "progress":
        print(reply.get("message", ""), file=sys.stderr, flush=True)
    elif kind == "status":
        if args.json:
            print(json.dumps({"running": True, **{k: v for k, v in reply.items() if k not in ("v", "type")}},
                             indent=2))
        else:
            _print_status(reply)
    elif kind == "signed_in":
        print(f"signed in: {reply.get('account') or reply.get('key')} (expires {_when(reply.get('expires_on'))})")
    elif kind == "refreshed":
        print(f"refreshed {reply.get('key')} (expires {_when(reply.get('expires_on'))})")
    elif kind == "signed_out":
        print(f"signed out {reply.get('key')}")
    elif kind == "bye":
        print("kubetray stopped")
    return 0


def _when(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "never"
    left = epoch - time.time()
    stamp = time.strftime("%H:%M", time.localtime(epoch))
    return f"{stamp}, in {int(left // 60)} min" if left > 0 else f"{stamp}, expired"


def _print_status(reply: dict[str, Any]) -> None:
    print(f"daemon: running (pid {reply.get('pid')}, kubetray {reply.get('version')})")
    print(f"socket: {reply.get('socket')}")
    print(f"keyring: {reply.get('keyring')}")
    profiles = reply.get("profiles") or []
    if not profiles:
        print("profiles: none yet (they appear after the first kubectl call)")
    for p in profiles:
        print(f"\n{p['key']}  {p['state']}")
        print(f"  account:   {p.get('account') or '-'}")
        print(f"  authority: {p['authority']}  (login {p['login']})")
        print(f"  server id: {p['server_id']}  client id: {p['client_id']}")
        print(f"  expires:   {_when(p.get('expires_on'))}")
        if p.get("last_error"):
            print(f"  problem:   {p['last_error']}")
