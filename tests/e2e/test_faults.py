"""Identity-provider faults: the daemon keeps serving what still works and fails clearly otherwise."""

from __future__ import annotations

import time

import pytest

from tests.support.rig import Rig

pytestmark = pytest.mark.e2e


def test_a_valid_token_is_served_while_the_provider_fails(rig: Rig) -> None:
    """The real-time smoke: a refresh fails at a provider that answers 503, kubectl keeps working.

    It used to sleep 33 s into a 40-second token and hit a 2-3 s window between the serving window and
    the last-resort window. That timing, the backoff and the recovery run on a fake clock in
    tests/integration/test_headless_clock.py; here nothing depends on when."""
    assert rig.kubectl("get", "pods").returncode == 0
    rig.authority.fail_next("/token", 503, headers={"Retry-After": "1"}, count=1000)
    before = rig.authority.counts["token.refresh_token"]
    rig.kubetray("refresh")  # refresh now, while the provider is down
    attempts = rig.authority.counts["token.refresh_token"] - before
    assert attempts == 1  # one attempt; the next waits for the backoff
    profile = rig.status()["profiles"][0]
    assert profile["state"] == "error"
    assert "503" in profile["last_error"] or "temporarily" in profile["last_error"], profile["last_error"]
    proc = rig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()  # the still-valid token beats an error
    assert proc.stderr == b""
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
    assert needle in errors[0], errors[0]  # each fault names its own cause
    others = {"HTTP Error: 500", "not JSON", "temporarily_unavailable"} - {needle}
    assert not any(other in errors[0] for other in others), errors[0]
    assert rig.daemon_pid() is not None  # still up
