"""The management CLI against a real daemon: status with contexts, login/refresh/logout, help, completion."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from broker.cli.completion import script
from broker.cli.main import _COMMANDS, parser
from tests.support.rig import Rig


@pytest.mark.parametrize("command", sorted(_COMMANDS) + ["convert-kubeconfig"])
def test_every_command_has_help_with_examples(command: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "broker", command, "--help"], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"examples:" in proc.stdout and b"kubetray " + command.encode() in proc.stdout


def test_bash_completion_is_valid_and_completes_commands_and_options() -> None:
    text = script("bash", parser())
    assert subprocess.run(["bash", "-n"], input=text.encode(), check=False).returncode == 0
    probe = text + '\nCOMP_WORDS=(kubetray convert-kubeconfig --d); COMP_CWORD=2; _kubetray; echo "${COMPREPLY[@]}"\n'
    out = subprocess.run(["bash", "-c", probe], capture_output=True, check=True).stdout.decode()
    assert out.split() == ["--dry-run"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_name_every_command(shell: str) -> None:
    text = script(shell, parser())
    for command in _COMMANDS:
        assert command in text
    if shutil.which(shell):
        flag = ["-n"] if shell == "zsh" else ["--no-execute"]
        assert subprocess.run([shell, *flag], input=text.encode(), check=False).returncode == 0


def test_bad_input_gets_one_line_that_says_what_to_do(rig: Rig) -> None:
    missing = rig.kubetray("convert-kubeconfig", "--kubeconfig", str(rig.root / "nope"))
    assert missing.returncode == 2
    assert missing.stderr.decode().count("\n") == 1 and b"--kubeconfig" in missing.stderr
    nocontext = rig.kubetray("whoami", "--context", "nope")
    assert nocontext.returncode == 2 and b"no context named 'nope'" in nocontext.stderr
    (rig.root / "kubeconfig").write_text("users: [\n")
    broken = rig.kubetray("whoami")
    assert broken.returncode == 2 and b"not valid YAML" in broken.stderr


def test_status_login_refresh_logout_and_whoami_with_contexts(rig: Rig) -> None:
    launcher = rig.kubetray("shim-path").stdout.decode().strip()
    rig.write_kubeconfig("devicecode", command=launcher)
    login = rig.kubetray("login", "--context", "aks")  # starts the daemon and signs in
    assert login.returncode == 0, login.stderr.decode()
    assert b"enter the code" in login.stderr and b"signed in: " + rig.authority.user.upn.encode() in login.stdout
    status = rig.status()
    (profile,) = status["profiles"]
    assert profile["contexts"] == ["aks"] and profile["state"] == "ok"
    assert profile["account"] == rig.authority.user.upn and status["keyring"]
    text = rig.kubetray("status").stdout.decode()
    assert "contexts:     aks" in text and "last refresh:" in text

    who = rig.kubetray("whoami", "--json")
    assert who.returncode == 0, who.stderr.decode()
    claims = json.loads(who.stdout)
    assert claims["upn"] == rig.authority.user.upn and claims["groups"] == len(rig.authority.user.groups)
    assert claims["tenant"] == rig.authority.tenant_id

    refreshes = rig.authority.counts["refreshes"]
    assert rig.kubetray("refresh", profile["key"][:6]).returncode == 0
    assert rig.authority.counts["refreshes"] == refreshes + 1

    assert rig.kubetray("logout").returncode == 2  # says what to name
    out = rig.kubetray("logout", "--all", "--json")
    assert out.returncode == 0, out.stderr.decode()
    assert [r["type"] for r in json.loads(out.stdout)] == ["signed_out"]
    assert rig.status()["profiles"][0]["state"] == "sign_in_required"
    failed = rig.kubectl("get", "pods")
    assert failed.returncode != 0 and b"kubetray login" in failed.stderr  # nothing left in memory or keyring
    from broker.execplugin.kubelogin_args import parse_get_token
    from broker.store.keyring_store import KeyringSecretStore, default_backend

    cache_name = parse_get_token(rig.get_token_args("devicecode")).cache_name
    assert KeyringSecretStore(default_backend()).load(cache_name) is None  # the entry itself is gone
