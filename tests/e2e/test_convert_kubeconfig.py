"""convert-kubeconfig on a KUBECONFIG list, then each converted context works through real kubectl."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.support.rig import CLIENT_ID, SERVER_ID, Rig

pytestmark = pytest.mark.e2e
CORPUS = Path(__file__).resolve().parent.parent / "data" / "kubeconfigs"


def _write(rig: Rig) -> tuple[Path, Path]:
    values = {
        "ca_data": base64.b64encode(rig.ca.pem_bytes).decode(), "server": rig.apiserver.url,
        "server_id": SERVER_ID, "client_id": CLIENT_ID, "tenant_id": rig.authority.tenant_id,
        "authority_host": rig.authority.url + "/",
    }
    paths = []
    for name in ("rig-a", "rig-b"):
        path = rig.root / f"{name}.yaml"
        path.write_text((CORPUS / f"{name}.yaml.in").read_text().format(**values))
        path.chmod(0o600)
        paths.append(path)
    rig.env["KUBECONFIG"] = ":".join(map(str, paths))
    return paths[0], paths[1]


def test_convert_dry_run_then_convert_then_kubectl_then_idempotent_then_revert(rig: Rig) -> None:
    a, b = _write(rig)
    originals = a.read_text(), b.read_text()

    dry = rig.kubetray("convert-kubeconfig", "--dry-run")
    assert dry.returncode == 0, dry.stderr.decode()
    assert dry.stdout.decode().count("+      command: ") == 2
    assert b"+      interactiveMode: IfAvailable" in dry.stdout
    assert (a.read_text(), b.read_text()) == originals and not Path(f"{a}.kubetray-backup").exists()

    done = rig.kubetray("convert-kubeconfig")
    assert done.returncode == 0, done.stderr.decode()
    report = done.stderr.decode()
    assert report.count("converted: ") == 2
    assert "left alone: user 'gke'" in report and "robot" not in report
    assert Path(f"{a}.kubetray-backup").read_text() == originals[0]
    assert b.read_text() == originals[1] and not Path(f"{b}.kubetray-backup").exists()
    assert "# switched with `kubelogin convert-kubeconfig -l interactive`" in a.read_text()
    assert "command: kubelogin" not in a.read_text()

    for context in ("rig-devicecode", "rig-interactive"):
        proc = rig.kubectl("--context", context, "get", "pods")
        assert proc.returncode == 0, proc.stderr.decode()
    # Both contexts share one sign-in group: one sign-in for both.
    assert rig.authority.counts["sign_ins"] == 1
    whoami = rig.kubetray("whoami", "--context", "rig-interactive", "--json")
    assert whoami.returncode == 0, whoami.stderr.decode()
    assert rig.authority.user.upn in whoami.stdout.decode()
    status = rig.status()
    assert sorted(status["profiles"][0]["contexts"]) == ["rig-devicecode", "rig-interactive"]

    converted = a.read_text()
    again = rig.kubetray("convert-kubeconfig")
    assert again.returncode == 0 and b"nothing to convert" in again.stderr
    assert a.read_text() == converted

    revert = rig.kubetray("convert-kubeconfig", "--revert")
    assert revert.returncode == 0, revert.stderr.decode()
    assert (a.read_text(), b.read_text()) == originals
    assert not Path(f"{a}.kubetray-backup").exists()
    assert rig.kubetray("convert-kubeconfig", "--revert").returncode == 1  # nothing left to restore


def test_only_the_named_context_is_converted(rig: Rig) -> None:
    a, _ = _write(rig)
    proc = rig.kubetray("convert-kubeconfig", "--context", "rig-interactive")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr.decode().count("converted: ") == 1
    assert a.read_text().count("command: kubelogin") == 1
    assert rig.kubectl("--context", "rig-interactive", "get", "pods").returncode == 0
    bad = rig.kubetray("convert-kubeconfig", "--context", "nope")
    assert bad.returncode == 2 and b"no context named 'nope'" in bad.stderr
