"""kuberc's credential-plugin policy as kubectl reads it, and the one entry kubetray adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.kubeconfig import files, kuberc

SHIM = "/home/u/.local/share/kubetray/bin/kubetray-shim"
HEAD = "apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n"


def load(tmp_path: Path, text: str | None) -> files.KubeconfigFile:
    path = tmp_path / "kuberc"
    if text is not None:
        path.write_text(text)
    return files.load(str(path))


def test_kubectl_reads_KUBERC_else_the_home_file_and_off_turns_it_off(tmp_path: Path) -> None:
    assert kuberc.kuberc_path({"KUBERC": str(tmp_path / "rc")}) == str(tmp_path / "rc")
    assert kuberc.kuberc_path({"KUBERC": "off"}) is None
    assert kuberc.kuberc_path({}).endswith("/.kube/kuberc")


@pytest.mark.parametrize(("text", "policy", "refused"), [
    (None, "AllowAll", ""),
    (HEAD, "AllowAll", ""),
    (HEAD + "credentialPluginPolicy: AllowAll\n", "AllowAll", ""),
    (HEAD + "credentialPluginPolicy: DenyAll\n", "DenyAll", "DenyAll"),
    (HEAD + "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist: []\n", "Allowlist", "does not name"),
    (HEAD + f"credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- name: {SHIM}\n", "Allowlist", ""),
    (HEAD + "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- name: kubetray-shim\n",
     "Allowlist", "does not name"),  # kubectl matches the path the kubeconfig runs, not a basename
])
def test_judge_says_what_kubectl_would_do(tmp_path: Path, text: str | None, policy: str, refused: str) -> None:
    verdict = kuberc.judge(load(tmp_path, text), SHIM)
    assert verdict.policy == policy and verdict.exists == (text is not None)
    assert (refused in verdict.refusal) if refused else not verdict.refusal


def test_adding_keeps_comments_and_order_and_is_idempotent(tmp_path: Path) -> None:
    text = (HEAD + "# vetted plugins only\ncredentialPluginPolicy: Allowlist  # security team\n"
            "credentialPluginAllowlist:\n- name: /usr/bin/other  # the other cloud\n"
            "defaults:\n- command: apply\n  options:\n  - name: server-side\n    default: \"true\"\n")
    f = load(tmp_path, text)
    assert kuberc.add_to_allowlist(f, SHIM)
    out = f.dump()
    assert out == text.replace("  # the other cloud\n", f"  # the other cloud\n- name: {SHIM}\n")
    (tmp_path / "kuberc").write_text(out)
    again = load(tmp_path, out)
    assert not kuberc.add_to_allowlist(again, SHIM) and again.dump() == out


def test_an_allowlist_policy_without_a_list_gets_one(tmp_path: Path) -> None:
    f = load(tmp_path, HEAD + "credentialPluginPolicy: Allowlist\n")
    assert kuberc.add_to_allowlist(f, SHIM)
    assert f.dump().endswith(f"credentialPluginAllowlist:\n- name: {SHIM}\n")


@pytest.mark.parametrize("text", [None, HEAD, HEAD + "credentialPluginPolicy: DenyAll\n"])
def test_nothing_but_an_allowlist_is_edited(tmp_path: Path, text: str | None) -> None:
    f = load(tmp_path, text)
    before = f.dump() if text is not None else None
    assert not kuberc.add_to_allowlist(f, SHIM)
    assert (f.dump() if text is not None else None) == before
