"""The first kubectl after the daemon stopped (Quit, reboot, login): answered by the new daemon from the
keyring before it loads msal or its server, with no request to the identity provider; what it cannot
answer so goes the long way, as before."""

from __future__ import annotations

import json

from tests.support.probes import wait_for
from tests.support.rig import Rig


def _requests(rig: Rig) -> list[list[str]]:
    try:
        doc = json.loads((rig.root / "state" / "requests.json").read_text())
    except FileNotFoundError:
        return []
    rows: list[list[str]] = doc["requests"]
    return rows


def _indexed(rig: Rig, count: int) -> list[list[str]]:
    """The index once it holds ``count`` requests (the daemon writes it beside the reply, on its executor)."""
    rows: list[list[str]] = wait_for(lambda: len(rows := _requests(rig)) == count and rows, 10,
                                     f"{count} request(s) in the index")
    return rows


def test_the_first_kubectl_after_a_stop_is_answered_from_the_keyring(rig: Rig) -> None:
    assert rig.kubectl("get", "pods").returncode == 0  # signs in; the daemon keeps the token and the request
    key = rig.status()["profiles"][0]["key"]
    assert [k for _, k in _indexed(rig, 1)] == [key]
    from broker.app import build_store
    from broker.store.token_vault import entry_name

    wait_for(lambda: build_store(check=False).load(entry_name(key)) is not None, 30, "the kept token")
    rig.stop_daemon()
    before = rig.authority.counts
    for _ in range(2):
        proc = rig.kubectl("get", "pods")
        assert proc.returncode == 0, proc.stderr.decode()
        assert b"Running" in proc.stdout and proc.stderr == b""  # the API server accepted the kept token
        log = rig.daemon_log()
        rig.stop_daemon()
    after = rig.authority.counts
    assert log.count("answered 1 first call(s) from the keyring") >= 1, log[-2000:]
    moved = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    assert moved == {}, f"the identity provider was asked again: {moved}"
    assert rig.apiserver.counts["unauthorized"] == 0


def test_a_request_the_daemon_has_not_seen_goes_the_long_way(rig: Rig) -> None:
    assert rig.kubectl("get", "pods").returncode == 0
    rig.stop_daemon()
    rig.write_kubeconfig("interactive", "--timeout", "3m")  # other arguments, the same profile
    proc = rig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "first call(s) from the keyring" not in rig.daemon_log()
    assert rig.authority.counts["sign_ins"] == 1  # the kept token (or the refresh token) served it
    assert len(_indexed(rig, 2)) == 2  # and now it is known too


def test_requests_that_carry_a_secret_are_never_remembered(rig: Rig) -> None:
    assert rig.kubectl("get", "pods").returncode == 0
    known = _indexed(rig, 1)
    rig.write_kubeconfig("ropc", "--username", rig.authority.user.upn, "--password", "hunter2-not-kept")
    rig.kubectl("get", "pods")  # whatever the outcome: the request carried a password
    rig.stop_daemon()  # and whatever the daemon was still writing is written
    assert _requests(rig) == known
    assert "hunter2-not-kept" not in (rig.root / "state" / "requests.json").read_text()
