"""``kubetray``: run the daemon and manage it. Turns errors into one line and an exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from broker import __version__
from broker.cli import autostart as cli_autostart
from broker.cli import convert as cli_convert
from broker.cli import remote as cli_remote

EPILOG = """examples:
  kubetray demo                      try the whole flow locally, with nothing to set up
  kubetray convert-kubeconfig        switch kubelogin users in your kubeconfig to kubetray
  kubetray status                    show the daemon and every profile it serves
  kubetray whoami                    who the current context's token says you are
  kubetray doctor                    check everything between kubectl and the identity provider
  kubetray login --context prod      sign in now for context prod
  kubetray logout --all              remove every token from the keyring and the daemon
  kubetray stop                      stop the daemon (the next kubectl call starts it again)
  kubetray shim-path                 print the shim's fast launcher path, for a kubeconfig's `command:`
  kubetray autostart enable          start kubetray when you log in (status, disable)
  kubetray remote ssh-config HOST    use these sign-ins from kubectl on an ssh host (see `remote -h`)
  kubetray completion bash           shell completion (bash, zsh, fish)
"""

# Per command: (help, examples). Every command's --help ends with its examples.
_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run the broker daemon in the foreground",
            "kubetray run               serve until Ctrl-C (with a tray icon when there is a display)\n"
            "kubetray run --headless    no tray icon"),
    "status": ("show the daemon and its profiles",
               "kubetray status            daemon, keyring, and per profile: account, tenant, contexts, expiry\n"
               "kubetray status --json     the same for scripts"),
    "login": ("sign in now (joins a sign-in already running)",
              "kubetray login                 sign in to every profile that needs it\n"
              "kubetray login --context prod  sign in for the profile context prod uses\n"
              "kubetray login 3fa2            sign in to the profile whose key starts with 3fa2"),
    "logout": ("remove a profile's tokens from the keyring and the daemon",
               "kubetray logout 3fa2           sign out of one profile (key prefix from `kubetray status`)\n"
               "kubetray logout --context prod sign out of the profile context prod uses\n"
               "kubetray logout --all          sign out of everything"),
    "refresh": ("refresh tokens now, without a sign-in",
                "kubetray refresh               refresh every profile\n"
                "kubetray refresh 3fa2          refresh one"),
    "stop": ("stop the daemon", "kubetray stop"),
    "whoami": ("show who the context's token says you are (decoded offline; the token is never shown)",
               "kubetray whoami                 the current context\n"
               "kubetray whoami --context prod --json"),
    "doctor": ("check the path from kubectl to the identity provider and say how to fix what is wrong",
               "kubetray doctor                 check the current context\n"
               "kubetray doctor --context prod  check context prod"),
    "demo": ("try kubetray end to end on this machine: a local sign-in page and API server, nothing to set up",
             "kubetray demo                   sign in once (browser or device code), then kubectl runs through it\n"
             "kubetray demo --auto-approve    approve the demo sign-in by itself (for scripts)"),
    "shim-path": ("write the fast shim launcher and print its path (for kubeconfigs)", "kubetray shim-path"),
    "completion": ("print a shell completion script",
                   "kubetray completion bash > ~/.local/share/bash-completion/completions/kubetray\n"
                   "kubetray completion zsh > \"${fpath[1]}/_kubetray\"\n"
                   "kubetray completion fish > ~/.config/fish/completions/kubetray.fish"),
}


def _sub(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> argparse.ArgumentParser:
    text, examples = _COMMANDS[name]
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples.splitlines())
    return sub.add_parser(name, help=text, description=text, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _kubeconfig_args(p: argparse.ArgumentParser, *, context: bool = True) -> None:
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    if context:
        p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubetray", description="Credential broker for kubectl.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"kubetray {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = _sub(sub, "run")
    run.add_argument("--headless", action="store_true", help="no tray icon, even when a display is available")
    run.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)  # used by the shim
    status = _sub(sub, "status")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _kubeconfig_args(status, context=False)
    for name in ("login", "logout", "refresh"):
        cmd = _sub(sub, name)
        cmd.add_argument("profile", nargs="?", help="profile key (prefix) from `kubetray status`")
        if name != "refresh":
            cmd.add_argument("--all", action="store_true", help="every known profile")
        _kubeconfig_args(cmd)
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
    stop = _sub(sub, "stop")
    stop.add_argument("--json", action="store_true", help="machine-readable output")
    for name in ("whoami", "doctor"):
        cmd = _sub(sub, name)
        _kubeconfig_args(cmd)
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
    demo = _sub(sub, "demo")
    demo.add_argument("--auto-approve", action="store_true", help="approve the demo sign-in without a person")
    _sub(sub, "shim-path")
    cli_convert.add_parser(sub)
    cli_autostart.add_parser(sub)
    cli_remote.add_parser(sub)
    completion = _sub(sub, "completion")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        sys.exit(_dispatch(args))
    except KeyboardInterrupt:
        sys.exit(130)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from broker.process.daemon import run

        return run(detach=args.detach, foreground_log=not args.detach, headless=args.headless)
    if args.command is None:
        parser().print_help()
        return 0
    if args.command == "autostart":
        return cli_autostart.run(args)
    if args.command == "remote":
        return cli_remote.run(args)
    if args.command == "convert-kubeconfig":
        return cli_convert.run(args)
    if args.command == "shim-path":
        from broker.process.launcher import ensure_launcher

        print(ensure_launcher())
        return 0
    if args.command == "completion":
        from broker.cli.completion import script

        sys.stdout.write(script(args.shell, parser()))
        return 0
    if args.command == "demo":
        from broker.demo.run import run_demo

        return run_demo(auto_approve=args.auto_approve)
    from broker.cli import manage as cli_manage
    from broker.ipc.instance import ForeignPeer
    from broker.process.paths import Paths

    paths = Paths.default()
    try:
        if args.command == "status":
            return cli_manage.status(args, paths)
        if args.command == "whoami":
            return cli_manage.whoami(args, paths)
        if args.command == "doctor":
            from broker.cli.doctor import run_doctor

            return run_doctor(args, paths)
        return cli_manage.signed(args, paths)
    except cli_manage.CliError as exc:
        print(f"kubetray: {exc}", file=sys.stderr)
        return exc.status
    except ForeignPeer as exc:  # nothing was sent to whatever answers
        print(f"kubetray: refusing to use the broker socket: {exc}", file=sys.stderr)
        return 2
