"""``kubetray remote …``: use this desktop's sign-ins from kubectl on an ssh host, like ssh-agent forwarding.

``shim`` writes the single-file shim to copy there; ``ssh-config HOST`` prints the ssh_config lines
that forward the daemon's socket; ``kubeconfig`` prints a kubeconfig for the host that runs that shim
against the forwarded socket; ``deny`` / ``allow`` mark a profile local-only or serve it remotely again.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

REMOTE_DIR = ".kubetray"  # under the remote home: the forwarded socket and the shim live here
SHIM_NAME = "kubetray-shim.pyz"
SOCKET_NAME = "kubetray.sock"
# Arguments whose value is a secret: such a context is not offered for remote use (its kubeconfig
# would carry the secret to the other machine).
_SECRET_FLAGS = ("--client-secret", "--password", "--client-certificate-password", "--oidc-client-secret")

_HELP = """examples:
  kubetray remote shim -o kubetray-shim.pyz      the single-file shim to copy to the ssh host
  kubetray remote ssh-config devbox              ssh_config lines that forward the socket to devbox
  kubetray remote kubeconfig --context prod      a kubeconfig for devbox that uses the forwarded socket
  kubetray remote deny 3fa2                      never serve profile 3fa2 to forwarded callers
  kubetray remote allow 3fa2                     serve it to them again
"""


def add_parser(sub: Any) -> None:
    """Add ``remote`` to ``kubetray``'s subparsers."""
    p = sub.add_parser("remote", help="use this desktop's sign-ins from ssh hosts (socket forwarding)",
                       description="Serve kubectl on an ssh host through a Unix socket that ssh forwards to "
                                   "this desktop's daemon; sign-ins open here, on the desktop.",
                       epilog=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="remote_action", metavar="ACTION", required=True)
    shim = actions.add_parser("shim", help="write the single-file shim (a zipapp) for ssh hosts")
    shim.add_argument("-o", "--output", default=SHIM_NAME, metavar="FILE", help=f"where to write it ({SHIM_NAME})")
    for name, text in (("ssh-config", "print the ssh_config lines that forward the socket to HOST"),
                       ("kubeconfig", "print a kubeconfig for the ssh host (JSON, which kubectl reads)")):
        cmd = actions.add_parser(name, help=text, description=text)
        if name == "ssh-config":
            cmd.add_argument("host", help="the Host name in your ssh_config")
        else:
            cmd.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig on this desktop (default: $KUBECONFIG)")
            cmd.add_argument("--context", metavar="NAME", help="context to offer (default: the current one)")
            cmd.add_argument("--python", default="python3", help="the remote interpreter (default: python3)")
        cmd.add_argument("--remote-home", metavar="DIR", default=f"/home/{_user()}",
                         help="your home directory on the ssh host (default: /home/<your user name>)")
    for name, text in (("deny", "mark a profile local-only: forwarded callers are refused (code local_only)"),
                       ("allow", "serve a local-only profile to forwarded callers again")):
        cmd = actions.add_parser(name, help=text, description=text)
        cmd.add_argument("profile", nargs="?", help="profile key (prefix) from `kubetray status`")
        cmd.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG)")
        cmd.add_argument("--context", metavar="NAME", help="the profile that context uses")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "USER"


def remote_paths(remote_home: str) -> tuple[str, str]:
    """(socket, shim) on the ssh host, under ``<remote home>/.kubetray``."""
    base = remote_home.rstrip("/") + "/" + REMOTE_DIR
    return f"{base}/{SOCKET_NAME}", f"{base}/{SHIM_NAME}"


def ssh_config_text(host: str, local_socket: str, remote_home: str) -> str:
    """The ssh_config block for ``host``, with what the ssh host's sshd_config needs as comments."""
    remote_socket, remote_shim = remote_paths(remote_home)
    return "\n".join([
        f"# kubetray: kubectl on {host} uses this desktop's sign-ins while you are connected.",
        f"# Once, on {host}: mkdir -m 700 -p {remote_home.rstrip('/')}/{REMOTE_DIR}   and copy the shim "
        f"(`kubetray remote shim`) to {remote_shim}",
        f"# {host}'s sshd_config needs: AllowStreamLocalForwarding yes (the default) and",
        "#   StreamLocalBindUnlink yes (else a socket left by an earlier session blocks the forward).",
        f"Host {host}",
        f"    RemoteForward {remote_socket} {local_socket}",
        "    StreamLocalBindUnlink yes",
        "",
    ])


def remote_kubeconfig(entry_args: tuple[str, ...], context: str, user: str, cluster_name: str,
                      cluster: Any, *, python: str, remote_home: str) -> dict[str, Any]:
    """A one-context kubeconfig for the ssh host: the same get-token arguments, run by the zipapp shim
    (through shimzip.BOOTSTRAP, the fast way to start it)."""
    from broker.process.shimzip import BOOTSTRAP

    for arg in entry_args:
        if arg.split("=", 1)[0] in _SECRET_FLAGS:
            raise ValueError(f"context {context!r} passes a secret in its arguments ({arg.split('=', 1)[0]}); "
                             "kubetray does not copy secrets to another machine")
    remote_socket, remote_shim = remote_paths(remote_home)
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "users": [{"name": user, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": python,
            "args": ["-IS", "-c", BOOTSTRAP, remote_shim, *entry_args],
            "env": [{"name": "KUBETRAY_SOCKET", "value": remote_socket}],
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": False,
        }}}],
    }


def run(args: argparse.Namespace) -> int:
    """Carry out ``kubetray remote …``; returns the exit status."""
    from broker.process.paths import Paths

    action = args.remote_action
    if action == "shim":
        from broker.process import shimzip

        try:
            print(shimzip.write(args.output))
        except OSError as exc:
            print(f"kubetray: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return 1
        return 0
    if action == "ssh-config":
        sys.stdout.write(ssh_config_text(args.host, Paths.default().socket, args.remote_home))
        return 0
    if action == "kubeconfig":
        return _kubeconfig(args)
    return _mark(args, local_only=action == "deny")


def _kubeconfig(args: argparse.Namespace) -> int:
    from broker.kubeconfig.files import KubeconfigError, Merged, load_all

    try:
        merged = Merged.of(load_all(args.kubeconfig))
        name, user, body = merged.user_of(args.context)
        exec_ = body.get("exec") if isinstance(body, dict) else None
        if not isinstance(exec_, dict) or not str(exec_.get("command") or "").endswith("kubetray-shim"):
            raise KubeconfigError(f"context {name!r} does not use kubetray-shim; run "
                                  f"`kubetray convert-kubeconfig --context {name}` first")
        cluster_name = str(merged.contexts[name].get("cluster") or "")
        cluster = merged.clusters.get(cluster_name)
        if not isinstance(cluster, dict):
            raise KubeconfigError(f"context {name!r} names cluster {cluster_name!r}, which no kubeconfig defines")
        doc = remote_kubeconfig(tuple(str(a) for a in exec_.get("args") or ()), name, user, cluster_name,
                                cluster, python=args.python, remote_home=args.remote_home)
    except (KubeconfigError, ValueError) as exc:
        print(f"kubetray: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=2))
    return 0


def _mark(args: argparse.Namespace, *, local_only: bool) -> int:
    from broker.cli import manage
    from broker.ipc import instance
    from broker.process.paths import Paths

    paths = Paths.default()
    fields: dict[str, Any] = {"local_only": local_only}
    try:
        if args.context:
            fields["argv"] = list(manage.context_entry(args.kubeconfig, args.context).args)
        elif args.profile:
            fields["key"] = args.profile
        else:
            raise manage.CliError("say which profile (a key from `kubetray status`) or --context NAME", 2)
        if instance.probe(paths.socket) is None:
            raise manage.CliError(f"the daemon is not running (socket {paths.socket}); start it with `kubetray run`", 3)
        for reply in manage.replies(paths, "remote", **fields):
            if reply.get("type") == "remote_policy":
                state = "local-only: refused to forwarded callers" if local_only else "served to forwarded callers"
                print(f"{reply.get('key')}: {state}")
    except manage.CliError as exc:
        print(f"kubetray: {exc}", file=sys.stderr)
        return exc.status
    return 0
