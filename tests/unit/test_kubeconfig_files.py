"""convert-kubeconfig keeps a file's shape: its mode, its symlink, its first backup, and never a readable
temporary copy. Run as the real command in a fresh interpreter, with umask 000 so that a file created
with default permissions would be world-readable, and an audit hook that records the permissions of every
file just before kubetray chmods or renames it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "kubeconfigs"

_RUN = textwrap.dedent("""
    import json, os, stat, sys
    seen = []
    def hook(event, args):
        if event in ("os.chmod", "os.rename", "os.replace"):
            target = args[0]
            try:
                st = os.fstat(target) if isinstance(target, int) else os.lstat(target)
            except OSError:
                return
            if stat.S_ISREG(st.st_mode):
                seen.append([event, str(target), stat.S_IMODE(st.st_mode)])
    sys.addaudithook(hook)
    os.umask(0)
    from broker.cli.main import main
    try:
        main(sys.argv[1:])
    except SystemExit as done:
        status = done.code
    with open(os.environ["AUDIT_OUT"], "w") as f:
        json.dump(seen, f)
    sys.exit(status)
""")


def kubetray(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], list[list[object]]]:
    out = tmp_path / "audit.json"
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"),
               AUDIT_OUT=str(out), KUBERC=str(tmp_path / "no-kuberc"))
    env.pop("KUBECONFIG", None)
    proc = subprocess.run([sys.executable, "-c", _RUN, *argv], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    return proc, json.loads(out.read_text()) if out.exists() else []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_no_readable_temporary(audit: list[list[object]], directory: Path) -> None:
    """Every file kubetray chmodded or renamed in ``directory`` was private until then."""
    checked = [(event, path, m) for event, path, m in audit
               if isinstance(path, int) or str(path).startswith(str(directory))]
    assert checked, audit
    for event, path, m in checked:
        assert isinstance(m, int)
        if event == "os.chmod":  # the state just before the final mode is applied
            assert m & 0o077 == 0, (event, path, oct(m))


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kube" / "config"
    path.parent.mkdir()
    path.write_text((CORPUS / "aks-get-credentials.yaml").read_text())
    path.chmod(0o640)  # a group-readable kubeconfig (someone's choice): it stays 0640
    return path


def test_conversion_keeps_the_mode_and_never_writes_a_readable_temporary(tmp_path: Path, kubeconfig: Path) -> None:
    original = kubeconfig.read_text()
    proc, audit = kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig))
    assert proc.returncode == 0, proc.stderr
    assert mode(kubeconfig) == 0o640 and "kubetray-shim" in kubeconfig.read_text()
    backup = Path(f"{kubeconfig}.kubetray-backup")
    assert backup.read_text() == original and mode(backup) == 0o600
    assert_no_readable_temporary(audit, kubeconfig.parent)
    assert sorted(p.name for p in kubeconfig.parent.iterdir()) == ["config", "config.kubetray-backup"]


def test_revert_restores_the_original_mode_through_a_private_temporary(tmp_path: Path, kubeconfig: Path) -> None:
    original = kubeconfig.read_text()
    assert kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig))[0].returncode == 0
    proc, audit = kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig), "--revert")
    assert proc.returncode == 0, proc.stderr
    assert kubeconfig.read_text() == original and mode(kubeconfig) == 0o640
    assert not Path(f"{kubeconfig}.kubetray-backup").exists()
    assert_no_readable_temporary(audit, kubeconfig.parent)
    assert [p.name for p in kubeconfig.parent.iterdir()] == ["config"]


def test_a_symlinked_kubeconfig_stays_a_symlink_and_its_target_is_rewritten(tmp_path: Path, kubeconfig: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "kubeconfig.yaml"
    kubeconfig.rename(target)
    kubeconfig.symlink_to(target)
    original = target.read_text()
    proc, audit = kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig))
    assert proc.returncode == 0, proc.stderr
    assert kubeconfig.is_symlink() and kubeconfig.resolve() == target.resolve()
    assert "kubetray-shim" in target.read_text() and mode(target) == 0o640
    assert f"the file it links to, {target}" in proc.stderr
    assert_no_readable_temporary(audit, dotfiles)
    proc, _ = kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig), "--revert")
    assert proc.returncode == 0, proc.stderr
    assert kubeconfig.is_symlink() and target.read_text() == original


def test_a_second_conversion_keeps_the_first_backup(tmp_path: Path, kubeconfig: Path) -> None:
    original = kubeconfig.read_text()
    assert kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig))[0].returncode == 0
    # Later, `az aks get-credentials` adds another kubelogin user; converting again must not replace the
    # backup with the half-converted file, or --revert could never bring the original back.
    text = kubeconfig.read_text().replace("name: clusterUser_contoso-rg_contoso-aks", "name: second", 1)
    added = (CORPUS / "aks-get-credentials.yaml").read_text().split("users:\n", 1)[1]
    kubeconfig.write_text(text + added)
    proc, _ = kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig))
    assert proc.returncode == 0, proc.stderr
    assert "keeping the existing backup" in proc.stderr
    assert Path(f"{kubeconfig}.kubetray-backup").read_text() == original
    assert kubetray(tmp_path, "convert-kubeconfig", "--kubeconfig", str(kubeconfig), "--revert")[0].returncode == 0
    assert kubeconfig.read_text() == original
