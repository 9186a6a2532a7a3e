"""``kubetray convert-kubeconfig``: point kubelogin / auth-provider users at the shim, or ``--revert``."""

from __future__ import annotations

import argparse
import os
import sys

from broker.kubeconfig import convert, files, kuberc
from shim.text import printable

HELP = "rewrite kubelogin and legacy auth-provider users to use the kubetray shim"
EPILOG = """examples:
  kubetray convert-kubeconfig --dry-run          show the change as a diff; change nothing
  kubetray convert-kubeconfig                    convert every kubelogin user in the files kubectl reads
  kubetray convert-kubeconfig --context prod     convert only the user of context `prod`
  kubetray convert-kubeconfig --revert           put back the files as they were before the first conversion
  kubetray convert-kubeconfig --kuberc           also let the shim through kubectl's plugin allowlist

Each changed file is first copied to FILE.kubetray-backup (0600); a later conversion keeps that first
backup. Files keep their mode, and a symlinked kubeconfig stays a symlink (its target is rewritten).
Arguments and environment of each entry are kept; only command, apiVersion, interactiveMode and
installHint change. Entries that are not kubelogin or an azure/oidc auth-provider are left untouched
and listed. --kuberc adds the shim to credentialPluginAllowlist in the kuberc kubectl reads ($KUBERC or
~/.kube/kuberc) when its policy is Allowlist; AllowAll or no kuberc needs nothing, DenyAll is reported.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("convert-kubeconfig", help=HELP, description=HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", metavar="FILE", help="convert this file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", metavar="NAME", help="convert only the user this context uses")
    p.add_argument("--dry-run", action="store_true", help="print a unified diff and change nothing")
    p.add_argument("--revert", action="store_true", help="restore each file from its backup")
    p.add_argument("--kuberc", action="store_true",
                   help="add the shim to the kuberc's credentialPluginAllowlist (kubectl 1.35+)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.revert:
            return _revert(args)
        status = _convert(args)
        if args.kuberc and status == 0:
            status = _kuberc(args.dry_run)
        return status
    except files.KubeconfigError as exc:
        print(f"kubetray: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kubetray: cannot write {exc.filename}: {exc.strerror}; check its permissions", file=sys.stderr)
        return 1


def _convert(args: argparse.Namespace) -> int:
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
            print(printable(finding.line()), file=sys.stderr)  # names and paths from the kubeconfig
        if not any(x.action == convert.CONVERTED for x in findings):
            continue
        new = f.dump()
        if new == f.text:
            continue
        changed += 1
        if args.dry_run:
            sys.stdout.write(convert.unified_diff(f.text, new, f.path))
            continue
        backup = _backup(f)
        written = files.write_atomically(f.path, new)
        shown = f.path if written == os.path.abspath(f.path) else f"{f.path} (the file it links to, {written})"
        print(f"wrote {shown} (backup: {backup})", file=sys.stderr)
    if not changed:
        print("nothing to convert", file=sys.stderr)
    elif args.dry_run:
        print(f"dry run: {changed} file(s) would change; run again without --dry-run to write them", file=sys.stderr)
    return 0


def _backup(f: files.KubeconfigFile) -> str:
    """Copy the original aside before the first change; a later conversion keeps that first copy, which
    is what --revert promises to put back (the file as it was before kubetray touched it)."""
    backup = files.backup_path(f.path)
    if os.path.lexists(backup):
        print(f"keeping the existing backup {backup} (from an earlier conversion)", file=sys.stderr)
    else:
        files.write_atomically(backup, f.text, 0o600)  # the original may hold secrets: a private copy
    return backup


def _kuberc(dry_run: bool) -> int:
    """Let the shim through kubectl's credential-plugin allowlist, if the kuberc has one."""
    f = kuberc.read()
    if f is None:
        print("kuberc: turned off (KUBERC=off); kubectl runs every credential plugin", file=sys.stderr)
        return 0
    shim = _launcher(dry_run)
    verdict = kuberc.judge(f, shim)
    if not verdict.refusal:
        what = "no kuberc" if not verdict.exists else f"its policy is {verdict.policy}"
        print(f"kuberc: {f.path}: {what}, so kubectl runs the shim; nothing to add", file=sys.stderr)
        return 0
    if not kuberc.add_to_allowlist(f, shim):
        print(f"kubetray: kuberc {f.path}: {verdict.refusal}; kubetray leaves that choice alone. To let kubetray "
              f"in, set credentialPluginPolicy: Allowlist and add under credentialPluginAllowlist: "
              f"{kuberc.allowlist_entry(shim)}", file=sys.stderr)
        return 1
    new = f.dump()
    if dry_run:
        sys.stdout.write(convert.unified_diff(f.text, new, f.path))
        return 0
    backup = _backup(f)
    files.write_atomically(f.path, new)
    print(f"wrote {f.path}: {shim} added to credentialPluginAllowlist (backup: {backup})", file=sys.stderr)
    return 0


def _launcher(dry_run: bool) -> str:
    """The fast launcher's absolute path (a dry run reports it without writing it)."""
    from broker.process.launcher import ensure_launcher, launcher_path

    return launcher_path() if dry_run else ensure_launcher()


def _revert(args: argparse.Namespace) -> int:
    restored = 0
    paths = files.kubeconfig_paths(args.kubeconfig)
    if args.kuberc:
        path = kuberc.kuberc_path()
        paths += [path] if path is not None else []
    for path in paths:
        backup = files.backup_path(path)
        if not os.path.exists(backup):
            continue
        restored += 1
        if args.dry_run:
            current = files.load(path).text
            with open(backup, encoding="utf-8") as f:
                sys.stdout.write(convert.unified_diff(current, f.read(), path))
            continue
        with open(backup, encoding="utf-8") as f:
            original = f.read()
        # The current file has the original's mode (conversion kept it); a deleted one comes back 0600.
        # Written through a 0600 temporary file, and into a symlink's target, like a conversion.
        files.write_atomically(path, original)
        os.unlink(backup)
        print(f"restored {path} from {backup}", file=sys.stderr)
    if not restored:
        print("kubetray: no backup to restore (no FILE.kubetray-backup next to the kubeconfig files)",
              file=sys.stderr)
        return 1
    return 0
