"""kubectl → shim → daemon → test authority → Secret Service, end to end, with the real kubectl."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.rig import Rig

pytestmark = pytest.mark.e2e


def _idp_requests(rig: Rig) -> int:
    counts = rig.authority.counts
    return sum(v for k, v in counts.items() if k not in ("sign_ins", "refreshes"))


def test_first_call_signs_in_once_in_the_browser_then_serves_from_the_daemon(rig: Rig) -> None:
    first = rig.kubectl("get", "pods")
    assert first.returncode == 0, first.stderr.decode()
    assert b"nginx" in first.stdout or b"Running" in first.stdout
    assert b"in your browser" in first.stderr
    assert rig.authority.counts["sign_ins"] == 1
    assert rig.browser_launches() == 1
    before = _idp_requests(rig)
    for _ in range(3):
        again = rig.kubectl("get", "pods")
        assert again.returncode == 0, again.stderr.decode()
        assert again.stderr == b""
    assert _idp_requests(rig) == before  # no identity-provider request at all
    whoami = rig.kubectl("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr.decode()
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == rig.authority.user.upn
    assert rig.apiserver.counts["unauthorized"] == 0


def test_device_code_sign_in_relays_the_message_to_kubectl_stderr(rig: Rig) -> None:
    rig.write_kubeconfig("devicecode")
    first = rig.kubectl("get", "pods")
    assert first.returncode == 0, first.stderr.decode()
    assert b"enter the code" in first.stderr
    assert rig.authority.counts["sign_ins"] == 1
    assert rig.browser_launches() == 0
    before = _idp_requests(rig)
    assert rig.kubectl("get", "pods").returncode == 0
    assert _idp_requests(rig) == before


def test_without_a_browser_an_interactive_profile_falls_back_to_device_code(rig: Rig) -> None:
    del rig.env["BROWSER"]  # an SSH session: no display, no $BROWSER
    first = rig.kubectl("get", "pods")
    assert first.returncode == 0, first.stderr.decode()
    assert b"no browser can be opened" in first.stderr
    assert b"enter the code" in first.stderr
    assert rig.authority.counts["sign_ins"] == 1


def test_v1beta1_kubeconfigs_get_a_v1beta1_credential(rig: Rig) -> None:
    rig.write_kubeconfig(api_version="v1beta1")
    proc = rig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()


def test_the_fast_launcher_from_shim_path_works_as_the_kubeconfig_command(rig: Rig) -> None:
    launcher = rig.kubetray("shim-path")
    assert launcher.returncode == 0, launcher.stderr.decode()
    path = launcher.stdout.decode().strip()
    assert os.path.isabs(path) and path.startswith(str(rig.root))  # under the test's XDG data dir
    with open(path) as f:
        assert f.readline().endswith(" -IS\n")  # no site, no user environment: the fast start
    rig.write_kubeconfig(command=path)
    proc = rig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()
    assert rig.authority.counts["sign_ins"] == 1


def _versioned_kubectls() -> list[str]:
    """kubectl.1.27 … kubectl.1.33, where the kubectl package ships them beside its dispatcher."""
    import shutil
    from pathlib import Path

    found = shutil.which("kubectl")
    return sorted(str(p) for p in Path(found).resolve().parent.glob("kubectl.1.*")) if found else []


@pytest.mark.parametrize("api_version", ["v1", "v1beta1"])
def test_every_shipped_kubectl_version_gets_its_credential(rig: Rig, api_version: str) -> None:
    binaries = _versioned_kubectls()
    if not binaries:
        pytest.skip("no versioned kubectl binaries beside kubectl on this machine")
    rig.write_kubeconfig(api_version=api_version)
    for binary in binaries:
        proc = rig.run(binary, "get", "pods")
        assert proc.returncode == 0, (binary, proc.stderr.decode())
    assert rig.authority.counts["sign_ins"] == 1


@pytest.mark.slow
@pytest.mark.timeout(240)  # each kubectl may take up to 180 s while fifty start at once
def test_fifty_parallel_kubectl_calls_on_a_cold_start_make_one_daemon_and_one_sign_in(rig: Rig) -> None:
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: rig.kubectl("get", "pods", timeout=180), range(50)))
    failures = [r.stderr.decode() for r in results if r.returncode != 0]
    assert not failures, failures[:3]
    assert rig.authority.counts["sign_ins"] == 1
    assert rig.browser_launches() == 1
    assert rig.daemon_log().count(" serving on ") == 1  # exactly one daemon ever started


def test_a_daemon_killed_with_sigkill_comes_back_without_a_new_sign_in(rig: Rig) -> None:
    assert rig.kubectl("get", "pods").returncode == 0
    pid = rig.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert rig.socket.exists()  # a stale socket is left behind
    proc = rig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()
    new_pid = rig.daemon_pid()
    assert new_pid is not None and new_pid != pid
    assert rig.authority.counts["sign_ins"] == 1  # the cache came back from the keyring
    assert rig.browser_launches() == 1


def test_an_abandoned_sign_in_is_not_reopened_by_callers_without_a_terminal(rig: Rig) -> None:
    rig.write_kubeconfig("interactive", "--timeout", "3s")
    rig.browser("ignore")
    first = rig.kubectl("get", "pods")
    assert first.returncode != 0
    assert b"not completed" in first.stderr
    assert rig.browser_launches() == 1
    started = time.monotonic()
    for _ in range(3):  # an IDE polling every few seconds
        proc = rig.kubectl("get", "pods")
        assert proc.returncode != 0
        assert b"kubetray login" in proc.stderr
    assert time.monotonic() - started < 15  # failing fast, not waiting on a browser
    assert rig.browser_launches() == 1
    rig.browser("approve")
    login = rig.kubetray("login")
    assert login.returncode == 0, login.stderr.decode()
    assert rig.kubectl("get", "pods").returncode == 0
    assert rig.authority.counts["sign_ins"] == 1


def test_a_revoked_refresh_token_asks_to_sign_in_again_and_the_next_sign_in_recovers(rig: Rig) -> None:
    rig.authority.set_access_token_lifetime(20)
    rig.write_kubeconfig("interactive", "--timeout", "3s")
    assert rig.kubectl("get", "pods").returncode == 0
    rig.authority.revoke_refresh_tokens()
    rig.browser("ignore")  # the person is away when the daemon needs them
    # Refresh now rather than wait for the schedule (on a fake clock in test_headless_clock.py).
    rig.kubetray("refresh")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [p["state"] for p in rig.status()["profiles"]]
        if states == ["sign_in_required"]:
            break
        time.sleep(0.5)
    assert states == ["sign_in_required"]
    failed = rig.kubectl("get", "pods")
    assert failed.returncode != 0
    lines = [line for line in failed.stderr.decode().splitlines() if line.startswith("kubetray:")]
    assert any("sign in again" in line or "kubetray login" in line for line in lines), lines
    rig.browser("approve")
    assert rig.kubetray("login").returncode == 0
    assert rig.kubectl("get", "pods").returncode == 0
    assert rig.authority.counts["sign_ins"] == 2


@pytest.mark.slow
def test_short_lived_tokens_are_refreshed_ahead_so_no_call_waits(rig: Rig) -> None:
    """The real-time smoke through kubectl and the real refresh thread: one refresh of a 40-second token.

    Three lifetimes and the exact timing run on a fake clock in tests/integration/test_headless_clock.py.
    The refresh is due 16-20 s after the sign-in and the token is served from memory until 30 s: a
    10-second window for the refresh thread to wake up and refresh."""
    rig.authority.set_access_token_lifetime(40)
    assert rig.kubectl("get", "pods").returncode == 0  # the one sign-in
    end = time.monotonic() + 32  # past the serving window of the first token
    calls = 0
    while time.monotonic() < end:
        proc = rig.kubectl("get", "pods")
        assert proc.returncode == 0, proc.stderr.decode()
        calls += 1
        time.sleep(2)
    stats = rig.status()["stats"]
    assert stats["waited"] == 1, stats  # only the first call ever waited on the identity provider
    assert stats["served_from_memory"] >= calls
    assert rig.authority.counts["refreshes"] >= 1
    assert rig.authority.counts["sign_ins"] == 1
    assert rig.apiserver.counts["unauthorized"] == 0
