"""convert-kubeconfig on real-world shaped kubeconfigs: golden diffs, idempotence, what is left alone.

Goldens live next to the corpus as ``<name>.diff``. After a deliberate change, regenerate them with
``KUBETRAY_UPDATE_GOLDEN=1`` and read the new diffs before committing them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from broker.kubeconfig import convert, files

CORPUS = Path(__file__).resolve().parent.parent / "data" / "kubeconfigs"
SHIM = "/opt/kubetray/bin/kubetray-shim"  # a stand-in launcher path, so goldens do not depend on the machine
CASES = sorted(p.stem for p in CORPUS.glob("*.yaml"))


def _convert(name: str) -> tuple[str, str, list[convert.Finding]]:
    f = files.load(str(CORPUS / f"{name}.yaml"))
    findings = convert.convert_file(f, SHIM)
    return f.text, f.dump(), findings


@pytest.mark.parametrize("name", CASES)
def test_conversion_matches_the_golden_diff(name: str) -> None:
    old, new, _ = _convert(name)
    diff = convert.unified_diff(old, new, f"{name}.yaml")
    golden = CORPUS / f"{name}.diff"
    if os.environ.get("KUBETRAY_UPDATE_GOLDEN"):
        golden.write_text(diff)
    assert diff == golden.read_text()


@pytest.mark.parametrize("name", CASES)
def test_converting_twice_changes_nothing_the_second_time(name: str, tmp_path: Path) -> None:
    _, new, _ = _convert(name)
    path = tmp_path / "config"
    path.write_text(new)
    again = files.load(str(path))
    findings = convert.convert_file(again, SHIM)
    assert again.dump() == new
    assert not [f for f in findings if f.action == convert.CONVERTED]


@pytest.mark.parametrize("name", CASES)
def test_converted_users_run_the_shim_as_kubectl_expects(name: str) -> None:
    _, new, findings = _convert(name)
    doc = YAML(typ="safe").load(new)
    converted = {f.user for f in findings if f.action == convert.CONVERTED}
    for user in doc["users"]:
        exec_ = user["user"].get("exec") or {}
        if user["name"] in converted:
            assert exec_["command"] == SHIM
            assert exec_["apiVersion"] == "client.authentication.k8s.io/v1"
            assert exec_["interactiveMode"] == "IfAvailable"
            assert exec_["args"][0] == "get-token"
            assert "kubetray" in exec_["installHint"]
            assert "auth-provider" not in user["user"]


def test_arguments_and_environment_are_kept_verbatim() -> None:
    _, new, _ = _convert("aks-login-modes")
    old_doc = YAML(typ="safe").load((CORPUS / "aks-login-modes.yaml").read_text())
    new_doc = YAML(typ="safe").load(new)
    for before, after in zip(old_doc["users"], new_doc["users"], strict=True):
        assert after["user"]["exec"]["args"] == before["user"]["exec"]["args"]
        assert after["user"]["exec"].get("env") == before["user"]["exec"].get("env")


def test_int128_entries_drop_only_the_kubectl_subcommand() -> None:
    _, new, _ = _convert("oidc-login")
    users = {u["name"]: u["user"] for u in YAML(typ="safe").load(new)["users"]}
    assert users["oidc"]["exec"]["args"] == [
        "get-token", "--oidc-issuer-url=https://keycloak.example.org/realms/platform",
        "--oidc-client-id=kubernetes", "--oidc-extra-scope=email", "--oidc-extra-scope=groups",
    ]
    assert users["oidc-dex"]["exec"]["args"][-1] == "--grant-type=device-code"


def test_unrecognised_entries_are_left_alone_and_listed() -> None:
    old, new, findings = _convert("oidc-login")
    left = {f.user: f for f in findings if f.action == convert.UNRECOGNISED}
    assert set(left) == {"gke-user"}
    assert "gke-gcloud-auth-plugin" in left["gke-user"].kind
    assert "robot" not in {f.user for f in findings}  # a static token is not a sign-in plugin
    assert "command: gke-gcloud-auth-plugin" in new and "token: not-a-real-token" in new
    _, _, legacy = _convert("legacy-auth-provider")
    assert [f.user for f in legacy if f.action == convert.UNRECOGNISED] == ["gcp-user"]


def test_legacy_entries_become_get_token_flags_and_their_tokens_never_reach_the_diff() -> None:
    old, new, _ = _convert("legacy-auth-provider")
    doc = YAML(typ="safe").load(new)
    users = {u["name"]: u["user"] for u in doc["users"]}
    assert users["clusterUser_rg_legacy-aks"]["exec"]["args"] == [
        "get-token", "--login", "devicecode", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630",
        "--client-id", "80faf920-1908-4b52-b5ef-a8e7bedfc67a", "--tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "--environment", "AzurePublicCloud",
    ]
    assert "--oidc-extra-scope=groups" in users["oidc-user"]["exec"]["args"]
    diff = convert.unified_diff(old, new, "config")
    for secret in ("eyJ0eXAiOiJKV1QifQ", "not-a-real-refresh-token", "not-a-real-secret"):
        assert secret not in diff


def test_comments_survive() -> None:
    _, new, _ = _convert("aks-login-modes")
    assert new.startswith("# Clusters of the platform team.")
    assert "# the shared dev cluster" in new and "# interactive: a browser sign-in" in new


def test_a_broken_file_gets_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("users: [\n  - name: x\n")
    with pytest.raises(files.KubeconfigError, match="not valid YAML"):
        files.load(str(path))
