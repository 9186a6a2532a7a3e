"""Time-driven behaviour on the headless build, in-process, with a fake clock shared with the authority.

These were end-to-end tests sleeping on the real clock (150 s for short-lived tokens, 33 s for a
provider outage with a 2-3 s window on a 2-core machine). Here the same flows run through the real
socket, handler, service and MSAL against the Entra-shaped test authority, and the test moves time.
One short real-time smoke of each stays in tests/e2e, through real kubectl.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support import fake_cli
from tests.support.headless import Headless, credential
from tests.support.rig import SERVER_ID
from tests.support.tls import TestCA


@pytest.fixture
def make(ca: TestCA, tmp_path: Path) -> Iterator[Any]:
    made: list[Headless] = []

    def factory(**kwargs: Any) -> Headless:
        h = Headless(tmp_path / f"h{len(made)}", ca, **kwargs)
        made.append(h)
        return h

    yield factory
    for h in made:
        h.close()


def _served(h: Headless, replies: list[dict[str, Any]]) -> str:
    """The access token kubectl would get; checks it is valid on the shared clock and kubectl's
    expirationTimestamp is not later than the token's own expiry."""
    body = credential(replies)
    token = body["status"]["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] > h.clock.now(), (claims["exp"], h.clock.now())
    return str(token)


def _sign_in(h: Headless) -> str:
    first = h.exec(interactive=True)  # a person at a terminal: the device-code sign-in may run
    assert any(r["type"] == "progress" and "enter the code" in r["message"] for r in first), first
    token = _served(h, first)
    assert h.authority.counts["sign_ins"] == 1
    return token


def test_short_lived_tokens_are_refreshed_ahead_so_no_call_waits(make: Any) -> None:
    h = make(lifetime=45)
    tokens = {_sign_in(h)}
    calls = 0
    for _ in range(75):  # 150 s of fake time: more than three token lifetimes, a call every 2 s
        h.advance(2)
        replies = h.exec()
        assert [r["type"] for r in replies] == ["credential"], replies  # no progress: nobody waited
        tokens.add(_served(h, replies))
        calls += 1
    stats = h.status()["stats"]
    assert stats["waited"] == 1, stats  # only the first call ever waited on the identity provider
    assert stats["served_from_memory"] >= calls
    assert h.authority.counts["refreshes"] >= 3
    assert len(tokens) >= 4  # kubectl saw each refreshed token, not one token stretched past its life
    assert h.authority.counts["sign_ins"] == 1
    assert [p["state"] for p in h.status()["profiles"]] == ["ok"]


def test_a_valid_token_is_served_while_the_provider_fails_and_retries_back_off(make: Any) -> None:
    h = make(lifetime=40)  # refresh from 16-20 s, served from memory until 30 s, last resort until 36 s
    _sign_in(h)
    # Retry-After 0: MSAL's own throttle (on the real clock) stays out of the way, every retry reaches it.
    h.authority.fail_next("/token", 503, headers={"Retry-After": "0"}, count=1000)
    before = h.authority.counts["token.refresh_token"]
    attempts_at: list[float] = []
    for second in range(1, 34):
        h.advance(1)
        seen = h.authority.counts["token.refresh_token"] - before
        attempts_at += [second] * (seen - len(attempts_at))
    replies = h.exec()  # at 33 s: past the serving window, before expiry
    _served(h, replies)  # the still-valid token beats an error
    assert 1 <= len(attempts_at) <= 4, attempts_at  # exponential backoff, not a retry storm
    assert 16 <= attempts_at[0] <= 20, attempts_at  # the first try is the planned refresh
    gaps = [b - a for a, b in zip(attempts_at, attempts_at[1:], strict=False)]
    assert all(gap >= 5 * 2**i for i, gap in enumerate(gaps)), gaps  # backoff(n) ≥ 10·2ⁿ⁻¹ / 2
    profile = h.status()["profiles"][0]
    assert profile["state"] == "error"
    assert "503" in profile["last_error"] or "temporarily" in profile["last_error"], profile["last_error"]
    assert h.authority.counts["sign_ins"] == 1

    h.advance(4)  # 37 s: past the last-resort window; an expiring token is not handed out
    late = h.exec()
    assert not [r for r in late if r["type"] == "credential"], late
    errors = [r for r in late if r["type"] == "error"]
    assert errors and errors[0]["code"] != "internal", late

    h.authority.clear_faults()  # the provider recovers: the next retry refreshes, no sign-in
    for _ in range(700):
        h.advance(1)
        if h.status()["profiles"][0]["state"] == "ok":
            break
    assert h.status()["profiles"][0]["state"] == "ok"
    _served(h, h.exec())
    assert h.authority.counts["sign_ins"] == 1


def test_after_the_id_token_expires_the_refresh_token_is_used_not_a_new_sign_in(make: Any) -> None:
    """Generic OIDC (int128/kubelogin's flags) serving the ID token: a 20-second one, outlived."""
    h = make()
    h.authority.set_id_token_lifetime(20)
    argv = ["get-token", "--oidc-issuer-url", h.authority.issuer_v2, "--oidc-client-id", "kubectl-oidc",
            "--grant-type", "device-code", "--certificate-authority", h.ca_bundle]
    first = h.exec(argv=argv, interactive=True)
    id_token = _served(h, first)
    assert jwt.decode(id_token, options={"verify_signature": False})["aud"] == "kubectl-oidc"
    assert h.authority.counts["token.device_code"] >= 1 and h.authority.counts["sign_ins"] == 1
    h.advance(22)  # the 20-second ID token has expired
    again = h.exec(argv=argv)  # no person this time: only a refresh can answer
    renewed = _served(h, again)
    assert renewed != id_token
    assert h.authority.counts["sign_ins"] == 1
    assert h.authority.counts["token.refresh_token"] >= 1


def test_a_restarted_daemon_refreshes_an_expired_id_token_msal_still_caches(make: Any) -> None:
    """After a restart the access token is still in MSAL's cache, but the ID token kubectl needs has
    expired: the source must see that and refresh, not hand out the expired one or ask for a sign-in."""
    h = make()
    h.authority.set_id_token_lifetime(20)
    argv = ["get-token", "--oidc-issuer-url", h.authority.issuer_v2, "--oidc-client-id", "kubectl-oidc",
            "--grant-type", "device-code", "--certificate-authority", h.ca_bundle]
    id_token = _served(h, h.exec(argv=argv, interactive=True))
    h.restart()
    h.clock.advance(22)
    renewed = _served(h, h.exec(argv=argv))
    assert renewed != id_token
    assert h.authority.counts["sign_ins"] == 1
    assert h.authority.counts["token.refresh_token"] == 1


def test_azurecli_is_served_no_longer_than_its_own_expiry_and_az_runs_only_when_needed(
    make: Any, tmp_path: Path,
) -> None:
    h = make()
    bin_dir = fake_cli.install(tmp_path / "az-bin", "az", logged_out=fake_cli.AZ_LOGGED_OUT,
                               doc="A stand-in Azure CLI: prints the token the test left in next.json.",
                               body='with open(os.path.join(here, "next.json")) as f:\n'
                                    '    sys.stdout.write(f.read())\n')
    kubectl_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # kubectl's PATH (the shim forwards it)
    token = h.authority.issue_access_token(SERVER_ID, f"{SERVER_ID}/.default", lifetime=60)
    expires_on = int(h.clock.now()) + 60
    (bin_dir / "next.json").write_text(json.dumps({"accessToken": token, "expires_on": expires_on,
                                                   "tenant": h.authority.tenant_id, "tokenType": "Bearer"}))

    def az_calls() -> int:
        return len((bin_dir / "az.log").read_text().splitlines())

    assert _served(h, h.exec("azurecli", env=kubectl_env)) == token
    assert az_calls() == 1
    for _ in range(5):  # ten seconds of kubectl calls: served from memory, az is not run again
        h.advance(2)
        assert _served(h, h.exec("azurecli", env=kubectl_env)) == token
    assert az_calls() == 1

    (bin_dir / "logged-out").touch()  # `az logout`: from now on az refuses
    serving_ends = expires_on - 15  # expirationTimestamp: a quarter of the 60-second lifetime early
    last_served = 0.0
    calls_in_window = calls_after_window = 0
    for _ in range(80):
        before = az_calls()
        h.advance(1)
        ticked = az_calls() - before
        assert ticked <= 1  # one pass of the refresh schedule asks az at most once
        if h.clock.now() < serving_ends:
            calls_in_window = az_calls() - 1  # the refresh ahead and its backed-off retries
        else:
            # each kubectl call may ask az once more (no token to serve from memory), and so may the schedule's
            # pass (a retry whose jittered time fell just past the serving window)
            calls_after_window += 1 + ticked
        replies = h.exec("azurecli", env=kubectl_env)
        if any(r["type"] == "credential" for r in replies):
            assert _served(h, replies) == token  # still valid on the clock (checked inside)
            last_served = h.clock.now()
            continue
        errors = [r for r in replies if r["type"] == "error"]
        assert errors and "az login" in errors[0]["message"], replies
        break
    else:
        pytest.fail("kubetray kept serving the Azure CLI's token past its expiry")
    assert last_served < expires_on  # never past the expiry az reported
    assert 1 <= calls_in_window <= 3, calls_in_window  # refresh ahead, then backoff (≥ 5 s, ≥ 10 s): no storm
    assert az_calls() <= 1 + calls_in_window + calls_after_window


def test_a_revoked_refresh_token_is_found_by_the_scheduled_refresh_and_a_sign_in_recovers(make: Any) -> None:
    h = make(lifetime=60)
    _sign_in(h)
    h.authority.revoke_refresh_tokens()
    for _ in range(40):  # the planned refresh (24-30 s) meets the revoked refresh token
        h.advance(1)
        if h.status()["profiles"][0]["state"] == "sign_in_required":
            break
    assert h.status()["profiles"][0]["state"] == "sign_in_required"
    assert h.clock.now() - h.status()["profiles"][0]["last_refresh"] <= 31  # found at the refresh, not later
    assert h.authority.counts["sign_ins"] == 1  # the scheduled refresh never opens a sign-in itself
    login = h.ask({"op": "login", "all": True})  # `kubetray login`
    assert [r["type"] for r in login if r["type"] != "progress"] == ["signed_in", "done"], login
    _served(h, h.exec())
    assert h.authority.counts["sign_ins"] == 2
