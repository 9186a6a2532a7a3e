"""The smoke test every OS runs (the CI workflow's ubuntu, macos and windows jobs; Linux here).

Start the daemon, sign in by device code at the test authority (which approves by itself), then run the
shim the way a converted kubeconfig runs it on this OS and get a credential; stop the daemon, and get
the same credential again from the token kept in the keyring. The keyring
is this OS's own: the private Secret Service on Linux, the temporary unlocked keychain the workflow makes
the default on macOS, Credential Manager on Windows.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.process import launcher
from tests.support.apiserver import ApiServer
from tests.support.authority import EntraAuthority
from tests.support.probes import wait_for
from tests.support.rig import SERVER_ID, Rig
from tests.support.rig_fixtures import AUTHORITIES
from tests.support.tls import TestCA

EXEC_INFO = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
                        "spec": {"interactive": False}})


@pytest.fixture
def os_keyring_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment whose keyring the daemon uses: the private session here, the OS's own elsewhere."""
    if sys.platform.startswith("linux"):
        return dict(request.getfixturevalue("desktop_session").env)
    import os

    return dict(os.environ)


@pytest.fixture
def smoke_rig(os_keyring_env: dict[str, str], ca: TestCA, tmp_path: Path) -> Iterator[Rig]:
    authority = EntraAuthority(ca, tmp_path / "authority", auto_approve_device_after=0.3).start()
    AUTHORITIES.append(authority)
    apiserver = ApiServer(
        ca, tmp_path / "apiserver", jwks_url=authority.jwks_url, issuer=authority.issuer_v1,
        audience=SERVER_ID, client_ids=(), ca_bundle_for_jwks=ca.bundle(tmp_path / "apiserver-tls"),
    ).start()
    rig = Rig(root=tmp_path, base_env=os_keyring_env, authority=authority, apiserver=apiserver, ca=ca)
    try:
        yield rig
    finally:
        rig.kubetray("logout", "--all", timeout=30)  # leave nothing in the OS keyring
        rig.stop_daemon()
        apiserver.stop()
        authority.stop()


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_daemon_shim_and_the_os_keyring_give_kubectl_a_credential(smoke_rig: Rig) -> None:
    rig = smoke_rig
    shim_path = rig.kubetray("shim-path")
    assert shim_path.returncode == 0, shim_path.stderr.decode()
    command = launcher.kubeconfig_command(shim_path.stdout.decode().strip())
    rig.write_kubeconfig("devicecode", command=command[0])
    login = rig.kubetray("login", "--context", "aks")  # starts the daemon, signs in by device code
    assert login.returncode == 0, login.stderr.decode()
    reply = rig.run(*command, *rig.get_token_args("devicecode"), credential_on_stdout=True,
                    KUBERNETES_EXEC_INFO=EXEC_INFO)
    assert reply.returncode == 0, reply.stderr.decode()
    credential = json.loads(reply.stdout)
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1"
    assert credential["status"]["expirationTimestamp"]
    claims = _claims(credential["status"]["token"])
    assert claims["aud"] == SERVER_ID and claims["upn"] == rig.authority.user.upn
    status = rig.status()
    assert status["running"] and status["keyring"] not in ("", "opening")
    # Stopped (as by Quit or a reboot) and asked again: the kept token answers, with no request to the
    # authority (on Linux before the server loads; elsewhere once the OS keyring has opened). The daemon
    # keeps it just after answering: wait for it to be there before stopping.
    from broker.app import build_store
    from broker.store.token_vault import entry_name

    kept = entry_name(status["profiles"][0]["key"])
    wait_for(lambda: build_store(check=False).load(kept) is not None, 30, "the kept token in the OS keyring")
    rig.stop_daemon()
    before = {k: v for k, v in rig.authority.counts.items() if k.startswith("token.")}
    again = rig.run(*command, *rig.get_token_args("devicecode"), credential_on_stdout=True,
                    KUBERNETES_EXEC_INFO=EXEC_INFO)
    assert again.returncode == 0, again.stderr.decode()
    assert json.loads(again.stdout)["status"]["token"] == credential["status"]["token"]
    assert {k: v for k, v in rig.authority.counts.items() if k.startswith("token.")} == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="takes the D-Bus session away, a Linux notion")
def test_a_daemon_the_shim_starts_without_a_keyring_tells_kubectl_why(smoke_rig: Rig) -> None:
    # The daemon answers before it has opened the keyring; the failure must still reach the person, as the
    # reply to the waiting shim or, if the daemon is gone first, as the start log's last line.
    from tests.support.rig import shim_command

    rig = smoke_rig
    rig.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={rig.root}/no-bus"
    reply = rig.run(shim_command(), *rig.get_token_args("devicecode"), KUBERNETES_EXEC_INFO=EXEC_INFO, timeout=60)
    assert reply.returncode != 0
    assert b"gnome-keyring" in reply.stderr and b"plaintext" in reply.stderr, reply.stderr
    assert reply.stderr.count(b"\n") <= 2
    assert not reply.stdout
