"""Identity-provider faults: the daemon keeps serving what still works and fails clearly otherwise."""

from __future__ import annotations

import time

import pytest

from tests.support.rig import Rig

pytestmark = pytest.mark.e2e


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


@pytest.mark.slow
def test_a_valid_token_is_served_while_the_provider_fails_and_retries_are_bounded(rig: Rig) -> None:
    rig.authority.set_access_token_lifetime(40)  # refresh from ~16 s, served from memory until 30 s
    assert rig.kubectl("get", "pods").returncode == 0
    signed_in = time.monotonic()
    rig.authority.fail_next("/token", 503, headers={"Retry-After": "1"}, count=1000)
    before = rig.authority.counts["token.refresh_token"]
    time.sleep(max(0.0, 33 - (time.monotonic() - signed_in)))  # past the serving window, before expiry
    proc = rig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()  # the still-valid token beats an error
    attempts = rig.authority.counts["token.refresh_token"] - before
    elapsed = time.monotonic() - signed_in
    print(f"\nprovider down for {elapsed:.0f} s: {attempts} refresh attempts")
    assert 1 <= attempts <= 8  # exponential backoff, not a retry storm
    states = [p["state"] for p in rig.status()["profiles"]]
    assert states == ["error"]
    assert rig.authority.counts["sign_ins"] == 1


def test_an_unreachable_provider_gives_a_clear_error_quickly(rig: Rig) -> None:
    rig.authority.stop()
    started = time.monotonic()
    proc = rig.kubectl("get", "pods")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.decode().splitlines() if line.startswith("kubetray:")]
    assert lines and "cannot reach" in lines[0] and "HTTPS_PROXY" in lines[0], lines
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (500, b"<html>oops</html>", "HTTP Error: 500"),
        (200, b"{not json", "not JSON"),
        (429, None, "temporarily_unavailable"),
    ],
)
def test_broken_token_responses_during_sign_in_are_reported_not_crashed_on(
    rig: Rig, status: int, body: bytes | None, needle: str
) -> None:
    rig.write_kubeconfig("devicecode")
    rig.authority.fail_next("/token", status, body=body, headers={"Retry-After": "1"}, count=50)
    proc = rig.kubectl("get", "pods")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.decode().splitlines() if line.startswith("kubetray:")]
    errors = [line for line in lines if "enter the code" not in line]
    assert errors, proc.stderr.decode()
    assert "internal error" not in errors[0]
    assert needle in errors[0] or "sign-in" in errors[0], errors[0]
    assert rig.daemon_pid() is not None  # still up
