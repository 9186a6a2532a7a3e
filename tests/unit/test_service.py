"""TokenService with an injected clock: cache, margins, single flight, sign-in policy, backoff."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from broker.core.errors import LoginFailed, LoginRequired, ProviderUnreachable
from broker.core.policy import Policy
from broker.core.service import TokenService
from tests.support.fakes import FakeClock, FakeSource, MemoryRegistry, ThreadSubmit, profile
from tests.support.probes import wait_for


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source(clock: FakeClock) -> FakeSource:
    return FakeSource(clock)


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def service(source: FakeSource, clock: FakeClock, registry: MemoryRegistry) -> Iterator[TokenService]:
    submit = ThreadSubmit()
    yield TokenService(source=source, clock=clock, submit=submit, registry=registry, rand=lambda: 0.5)
    submit.close()


def test_first_call_signs_in_then_serves_from_memory(service: TokenService, source: FakeSource) -> None:
    token = service.get_token(profile(), person_present=False).result(5)
    assert token.access_token == "tok-1"
    assert source.sign_in_calls == 1
    again = service.get_token(profile(), person_present=False).result(5)
    assert again.access_token == "tok-1"
    assert source.silent_calls == [False]  # one silent attempt before the sign-in, none after


def test_parallel_callers_share_one_sign_in_and_all_see_the_progress(
    service: TokenService, source: FakeSource
) -> None:
    source.sign_in_gate = threading.Event()
    heard: list[list[str]] = [[] for _ in range(20)]
    futures = [service.get_token(profile(), person_present=False, progress=heard[i].append) for i in range(20)]
    source.sign_in_gate.set()
    tokens = {f.result(5).access_token for f in futures}
    assert tokens == {"tok-1"}
    assert source.sign_in_calls == 1
    assert all(lines == [source.sign_in_message] for lines in heard)


def test_profiles_sharing_authority_client_and_server_share_tokens(service: TokenService, source: FakeSource) -> None:
    a = profile(login="interactive")
    b = profile(login="devicecode", timeout=120.0)  # another cluster of the same tenant
    assert a.key == b.key
    service.get_token(a, person_present=False).result(5)
    assert service.get_token(b, person_present=False).result(5).access_token == "tok-1"
    assert source.sign_in_calls == 1
    assert profile(server_id="server-2").key != a.key


def test_margins_scale_with_short_lifetimes() -> None:
    p = Policy()
    from broker.core.model import Token

    long = Token("x", expires_on=10_000.0, obtained_at=10_000.0 - 3600)
    assert p.serve_until(long) == 10_000.0 - 120
    assert p.refresh_at(long, rand=lambda: 0.0) == 10_000.0 - 600
    short = Token("x", expires_on=1_000.0, obtained_at=940.0)
    assert p.serve_until(short) == 1_000.0 - 15
    assert p.refresh_at(short, rand=lambda: 0.0) == 1_000.0 - 30
    assert p.refresh_at(short, rand=lambda: 1.0) == 1_000.0 - 36  # jitter capped at 10 % of the lifetime


def test_due_refresh_runs_in_the_background_before_expiry(
    service: TokenService, source: FakeSource, clock: FakeClock
) -> None:
    first = service.get_token(profile(), person_present=False).result(5)
    due = service.next_due()
    assert due is not None and first.expires_on - 615 <= due <= first.expires_on - 600
    clock.t = due - 1
    assert service.run_due() == 0
    clock.t = due
    assert service.run_due() == 1
    wait_for(lambda: (t := service.cached(profile())) is not None and t.access_token == "tok-2", 5,
             "the refreshed token")
    assert source.silent_calls[-1] is True  # forced refresh
    assert source.sign_in_calls == 1


def test_failed_refresh_backs_off_and_keeps_serving_the_valid_token(
    service: TokenService, source: FakeSource, clock: FakeClock
) -> None:
    service.get_token(profile(), person_present=False).result(5)
    source.silent_error = ProviderUnreachable("down")
    clock.advance(3600 - 60)  # past serve_until: a caller must wait for a refresh
    token = service.get_token(profile(), person_present=False).result(5)
    assert token.access_token == "tok-1"  # still valid for 60 s: better than an error
    due1 = service.next_due()
    assert due1 is not None and clock.now() + 5 <= due1 <= clock.now() + 10
    clock.t = due1
    service.run_due()
    wait_for(lambda: (d := service.next_due()) is not None and d > due1, 5, "the next retry")
    due2 = service.next_due()
    assert due2 is not None and clock.now() + 10 <= due2 <= clock.now() + 20  # exponential


def test_an_asked_for_refresh_that_fails_says_so_while_kubectl_keeps_the_working_token(
    service: TokenService, source: FakeSource, clock: FakeClock
) -> None:
    service.get_token(profile(), person_present=False).result(5)
    source.silent_error = ProviderUnreachable("the provider is down")
    clock.advance(600)
    with pytest.raises(ProviderUnreachable, match="down"):  # `kubetray refresh`, the tray's Refresh now
        service.refresh(profile().key).result(5)
    assert service.get_token(profile(), person_present=False).result(5).access_token == "tok-1"
    source.silent_error = None
    source.signed_in = True
    assert service.refresh(profile().key).result(5).access_token == "tok-2"  # and a working one says so


def test_revoked_refresh_marks_sign_in_required_without_opening_a_browser(
    service: TokenService, source: FakeSource, clock: FakeClock
) -> None:
    service.get_token(profile(), person_present=False).result(5)
    source.silent_error = LoginRequired("revoked")
    clock.t = service.next_due() or 0
    service.run_due()
    wait_for(lambda: service.snapshot()[0].state == "sign_in_required", 5, "sign-in required")
    assert source.sign_in_calls == 1  # the background refresh never signs in


def test_abandoned_automatic_sign_in_is_not_reopened_until_a_person_asks(
    service: TokenService, source: FakeSource
) -> None:
    source.sign_in_error = LoginFailed("not completed")
    with pytest.raises(LoginFailed):
        service.get_token(profile(), person_present=False).result(5)
    assert source.sign_in_calls == 1
    for _ in range(5):  # an IDE polling overnight
        with pytest.raises(LoginRequired, match="kubetray login"):
            service.get_token(profile(), person_present=False).result(5)
    assert source.sign_in_calls == 1
    source.sign_in_error = None
    assert service.get_token(profile(), person_present=True).result(5).access_token == "tok-1"
    assert source.sign_in_calls == 2


def test_login_signs_in_even_with_a_valid_token(service: TokenService, source: FakeSource) -> None:
    service.get_token(profile(), person_present=False).result(5)
    assert service.login(profile()).result(5).access_token == "tok-2"
    assert source.sign_in_calls == 2


def test_registry_remembers_profiles_without_secrets(
    service: TokenService, source: FakeSource, registry: MemoryRegistry, clock: FakeClock
) -> None:
    service.get_token(profile(), person_present=False).result(5)
    assert registry.records and registry.records[0]["account"] == "alice@example.test"
    assert "tok-1" not in repr(registry.records)
    fresh = TokenService(source=source, clock=clock, submit=ThreadSubmit(), registry=registry)
    assert fresh.restore() == 1
    assert fresh.next_due() == 0.0  # warm up at once, silently
    assert fresh.run_due() == 1
    wait_for(lambda: fresh.cached(profile()) is not None, 5, "the warmed token")
    assert source.silent_calls[-1] is False
    assert source.sign_in_calls == 1


def test_a_deliberate_sign_out_is_remembered_across_a_restart(
    service: TokenService, source: FakeSource, clock: FakeClock, registry: MemoryRegistry
) -> None:
    service.get_token(profile(), person_present=False).result(5)
    service.logout(profile().key)
    submit = ThreadSubmit()
    try:
        restarted = TokenService(source=source, clock=clock, submit=submit, registry=registry, rand=lambda: 0.5)
        assert restarted.restore() == 1
        with pytest.raises(LoginRequired, match="kubetray login"):  # no browser for a background kubectl
            restarted.get_token(profile(), person_present=False).result(5)
        assert source.sign_in_calls == 1
        assert restarted.login(profile()).result(5).access_token == "tok-2"  # a person signs in again
        again = TokenService(source=source, clock=clock, submit=submit, registry=registry, rand=lambda: 0.5)
        again.restore()
        assert again.get_token(profile(), person_present=False).result(5)  # and nothing is blocked any more
    finally:
        submit.close()
