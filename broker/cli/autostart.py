"""``kubetray autostart enable | disable | status``: start kubetray at login, or stop doing so."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    """Add the ``autostart`` command to ``kubetray``'s subparsers (``sub``, from add_subparsers)."""
    p = sub.add_parser("autostart", help="start kubetray at login: enable | disable | status",
                       description="Start kubetray when you log in (XDG autostart or a systemd user unit on "
                                   "Linux, a LaunchAgent on macOS, the Run key on Windows).")
    actions = p.add_subparsers(dest="autostart_action", metavar="ACTION", required=True)
    enable = actions.add_parser("enable", help="start at login (idempotent; updates an entry that points elsewhere)")
    enable.add_argument("--systemd", action="store_true",
                        help="Linux: a systemd user unit (graphical-session.target) instead of an XDG autostart entry")
    actions.add_parser("disable", help="remove what `enable` wrote (and nothing else)")
    status = actions.add_parser("status", help="show what starts kubetray at login")
    status.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    """Carry out ``kubetray autostart …``; returns the exit status (2: cannot be done here)."""
    from broker.app import build_autostart
    from broker.core.autostart import AutostartError

    try:
        impl = build_autostart()
        if args.autostart_action == "enable":
            status = impl.enable(systemd=args.systemd)
        elif args.autostart_action == "disable":
            status = impl.disable()
        else:
            status = impl.status()
    except AutostartError as exc:
        print(f"kubetray: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"kubetray: could not change start at login: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(status.to_json(), indent=2))
    else:
        print("\n".join(status.lines()))
    return 0
