"""`kubetray doctor`: each failure it names is produced for real and reported with its fix."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.rig import CLIENT_ID, SERVER_ID, Rig
from tests.support.session import IsolatedSession

pytestmark = pytest.mark.e2e


def _launcher(rig: Rig) -> str:
    proc = rig.kubetray("shim-path")
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().strip()


@pytest.fixture
def healthy(rig: Rig) -> Iterator[Rig]:
    rig.write_kubeconfig("devicecode", command=_launcher(rig))
    yield rig


def _doctor(rig: Rig) -> tuple[int, dict[str, dict[str, Any]], str]:
    text = rig.kubetray("doctor")
    proc = rig.kubetray("doctor", "--json")
    results = {r["check"]: r for r in json.loads(proc.stdout)}
    assert proc.returncode == text.returncode
    return proc.returncode, results, text.stdout.decode()


def _sign_in_with(rig: Rig, **claims: Any) -> None:
    """The authority answers the sign-in with a properly signed token carrying ``claims``."""
    token = rig.authority.issue_access_token(CLIENT_ID, f"{SERVER_ID}/.default", **claims)
    rig.authority.fail_next("/oauth2/v2.0/token", 200, body={
        "token_type": "Bearer", "scope": f"{SERVER_ID}/.default", "expires_in": 3600, "access_token": token})
    rig.kubectl("get", "pods")  # the API server may refuse it; the daemon now holds it


def test_a_healthy_setup_passes_every_check(healthy: Rig) -> None:
    assert healthy.kubectl("get", "pods").returncode == 0
    status, results, text = _doctor(healthy)
    assert status == 0, text
    assert [r["status"] for r in results.values()] == ["ok"] * 7, text
    assert results["kuberc plugin policy"]["detail"].startswith("no kuberc at ")
    assert "clock skew" in results["token"]["detail"]


def test_a_slow_path_wrapper_is_named_with_its_fix(healthy: Rig) -> None:
    wrapper = healthy.root / "bin" / "kubetray-shim"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/usr/bin/env bash\nexec {_launcher(healthy)} "$@"\n')
    wrapper.chmod(0o755)
    healthy.write_kubeconfig("devicecode", command=str(wrapper))
    status, results, text = _doctor(healthy)
    assert status == 1
    assert results["kubeconfig exec entry"]["status"] == "fail"
    assert "wrapper script" in results["kubeconfig exec entry"]["detail"]
    assert "convert-kubeconfig" in results["kubeconfig exec entry"]["fix"] and "fix:" in text


def test_a_wrong_socket_directory_mode_is_named_with_chmod(healthy: Rig) -> None:
    assert healthy.kubectl("get", "pods").returncode == 0
    run = healthy.root / "run"
    run.chmod(0o755)
    try:
        status, results, _ = _doctor(healthy)
    finally:
        run.chmod(0o700)
    assert status == 1
    assert results["socket directory"]["status"] == "fail" and "0755" in results["socket directory"]["detail"]
    assert f"chmod 700 {run}" in results["socket directory"]["fix"]


def test_a_locked_keyring_is_named_with_unlock(healthy: Rig, desktop_session: IsolatedSession) -> None:
    assert healthy.kubectl("get", "pods").returncode == 0
    desktop_session.lock_keyring()
    try:
        status, results, _ = _doctor(healthy)
    finally:
        desktop_session.unlock_keyring()
    assert status == 1
    assert results["keyring"]["status"] == "fail" and "locked" in results["keyring"]["detail"]
    assert "Unlock" in results["keyring"]["fix"]


def test_an_expired_token_is_named_with_the_clock_skew(healthy: Rig) -> None:
    _sign_in_with(healthy, lifetime=-120)
    status, results, _ = _doctor(healthy)
    assert status == 1
    assert results["token"]["status"] == "fail"
    assert "expired" in results["token"]["detail"] and "clock skew" in results["token"]["detail"]
    assert "kubetray refresh" in results["token"]["fix"]


def test_a_wrong_audience_is_named_with_the_server_id_fix(healthy: Rig) -> None:
    _sign_in_with(healthy, aud="api://some-other-app")
    status, results, _ = _doctor(healthy)
    assert status == 1
    assert "audience 'api://some-other-app'" in results["token"]["detail"]
    assert "--server-id" in results["token"]["fix"]


def test_an_unreachable_authority_is_named_with_the_proxy_fix(healthy: Rig) -> None:
    assert healthy.kubectl("get", "pods").returncode == 0
    healthy.authority.stop()
    status, results, _ = _doctor(healthy)
    assert status == 1
    assert results["identity provider"]["status"] == "fail"
    assert "cannot reach" in results["identity provider"]["detail"]
    assert "HTTPS_PROXY" in results["identity provider"]["fix"]


def test_a_daemon_that_is_not_running_is_named_and_the_token_check_skipped(healthy: Rig) -> None:
    status, results, _ = _doctor(healthy)
    assert status == 1
    assert results["daemon"]["status"] == "fail" and "kubetray run" in results["daemon"]["fix"]
    assert results["token"]["status"] == "skip"
    assert os.path.basename(results["kubeconfig exec entry"]["detail"].split()[-1]) == "kubetray-shim"
