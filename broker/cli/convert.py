"""``kubetray convert-kubeconfig``: point kubelogin / auth-provider users at the shim, or ``--revert``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

HELP = "rewrite kubelogin and legacy auth-provider users to use the kubetray shim"
EPILOG = """examples:
  kubetray convert-kubeconfig --dry-run          show the change as a diff; change nothing
  kubetray convert-kubeconfig                    convert every kubelogin user in the files kubectl reads
  kubetray convert-kubeconfig --context prod     convert only the user of context `prod`
  kubetray convert-kubeconfig --revert           put back the files as they were before the last conversion

Each changed file is first copied to FILE.kubetray-backup. Arguments and environment of each entry are
kept; only command, apiVersion, interactiveMode and installHint change. Entries that are not kubelogin
or an azure/oidc auth-provider are left untouched and listed.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("convert-kubeconfig", help=HELP, description=HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", metavar="FILE", help="convert this file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", metavar="NAME", help="convert only the user this context uses")
    p.add_argument("--dry-run", action="store_true", help="print a unified diff and change nothing")
    p.add_argument("--revert", action="store_true", help="restore each file from its backup")


def run(args: argparse.Namespace) -> int:
    # Imported here: every `kubetray` command builds this parser, and `kubetray run` (the daemon's start,
    # which the first kubectl waits for) must not pay for ruamel.
    from broker.kubeconfig import files

    try:
        if args.revert:
            return _revert(args)
        return _convert(args)
    except files.KubeconfigError as exc:
        print(f"kubetray: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kubetray: cannot write {exc.filename}: {exc.strerror}; check its permissions", file=sys.stderr)
        return 1


def _convert(args: argparse.Namespace) -> int:
    from broker.kubeconfig import convert, files

    loaded = [f for f in files.load_all(args.kubeconfig) if not f.missing]
    if not loaded:
        where = ", ".join(files.kubeconfig_paths(args.kubeconfig))
        print(f"kubetray: no kubeconfig at {where}; pass one with --kubeconfig FILE", file=sys.stderr)
        return 2
    only: dict[str, set[str]] | None = None
    if args.context:
        merged = files.Merged.of(loaded)
        _ctx, user, _body = merged.user_of(args.context)
        only = {merged.users[user][0].path: {user}}
    command = _launcher(args.dry_run)
    changed = 0
    for f in loaded:
        if only is not None and f.path not in only:
            continue
        findings = convert.convert_file(f, command, None if only is None else only[f.path])
        for finding in findings:
            print(finding.line(), file=sys.stderr)
        if not any(x.action == convert.CONVERTED for x in findings):
            continue
        new = f.dump()
        if new == f.text:
            continue
        changed += 1
        if args.dry_run:
            sys.stdout.write(convert.unified_diff(f.text, new, f.path))
            continue
        backup = files.backup_path(f.path)
        files.write_atomically(backup, f.text, 0o600)  # the original may hold secrets: private copy
        files.write_atomically(f.path, new)
        print(f"wrote {f.path} (backup: {backup})", file=sys.stderr)
    if not changed:
        print("nothing to convert", file=sys.stderr)
    elif args.dry_run:
        print(f"dry run: {changed} file(s) would change; run again without --dry-run to write them", file=sys.stderr)
    return 0


def _launcher(dry_run: bool) -> list[str]:
    """What the converted entries run: the fast launcher, in the form this OS can execute (a dry run
    reports it without writing it)."""
    from broker.process.launcher import ensure_launcher, kubeconfig_command, launcher_path

    return kubeconfig_command(launcher_path() if dry_run else ensure_launcher())


def _revert(args: argparse.Namespace) -> int:
    from broker.kubeconfig import convert, files

    restored = 0
    for path in files.kubeconfig_paths(args.kubeconfig):
        backup = files.backup_path(path)
        if not os.path.exists(backup):
            continue
        restored += 1
        if args.dry_run:
            current = files.load(path).text
            with open(backup, encoding="utf-8") as f:
                sys.stdout.write(convert.unified_diff(current, f.read(), path))
            continue
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o600
        shutil.copyfile(backup, path + ".kubetray-restore")
        os.chmod(path + ".kubetray-restore", mode)
        os.replace(path + ".kubetray-restore", path)
        os.unlink(backup)
        print(f"restored {path} from {backup}", file=sys.stderr)
    if not restored:
        print("kubetray: no backup to restore (no FILE.kubetray-backup next to the kubeconfig files)",
              file=sys.stderr)
        return 1
    return 0
