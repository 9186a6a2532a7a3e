"""The token vault: the latest token of each profile kept beside its sign-in, so a restarted daemon
answers without its sources; written after the callers have their token, forgotten at logout (and
never written back by a flight that a logout overtook)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from broker.core.errors import LoginRequired, StoreUnavailable
from broker.core.model import Token
from broker.core.service import TokenService
from broker.store import token_vault
from broker.store.token_vault import KeyringTokenVault
from tests.support.fakes import FakeClock, FakeSource, MemoryRegistry, MemoryStore, ThreadSubmit, profile
from tests.support.probes import wait_for


class FailingStore(MemoryStore):
    def save(self, name: str, value: str) -> None:
        raise StoreUnavailable("the keyring is locked")


class SilentReader:
    """A light reader that cannot tell (as the Secret Service reader when the collection is locked)."""

    def __init__(self) -> None:
        self.reads = 0

    def load(self, name: str) -> str | None:
        self.reads += 1
        raise StoreUnavailable("cannot tell from here")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def submit() -> Iterator[ThreadSubmit]:
    pool = ThreadSubmit()
    yield pool
    pool.close()


def _service(clock: FakeClock, submit: ThreadSubmit, store: MemoryStore, source: FakeSource | None = None,
             registry: MemoryRegistry | None = None) -> TokenService:
    return TokenService(source=source or FakeSource(clock), clock=clock, submit=submit, registry=registry,
                        vault=KeyringTokenVault(store), rand=lambda: 0.5)


def test_a_new_token_is_kept_and_a_restarted_service_answers_from_it_without_its_source(
        clock: FakeClock, submit: ThreadSubmit, store: MemoryStore) -> None:
    first_source = FakeSource(clock)
    first = _service(clock, submit, store, first_source)
    token = first.get_token(profile(), person_present=True).result(5)
    name = token_vault.entry_name(profile().key)
    wait_for(lambda: name in store.items, 5, "the token was not kept in the vault")
    assert token.access_token not in name

    clock.advance(600)  # a restart ten minutes later: memory is gone, the vault is not
    second_source = FakeSource(clock)
    second = _service(clock, submit, store, second_source)
    again = second.get_token(profile(), person_present=False).result(5)
    assert again.access_token == token.access_token
    assert second_source.silent_calls == [] and second_source.sign_in_calls == 0
    assert second.stats()["served_from_vault"] == 1
    # and it is the profile's token now: the refresh schedule has it, memory serves the next call
    assert second.next_due() == pytest.approx(token.expires_on - 600 - 15)
    assert second.get_token(profile(), person_present=False).result(5) is again
    assert second.stats()["served_from_memory"] == 1


def test_a_kept_token_past_its_serving_window_is_not_served(clock: FakeClock, submit: ThreadSubmit,
                                                            store: MemoryStore) -> None:
    _service(clock, submit, store).get_token(profile(), person_present=True).result(5)
    wait_for(lambda: store.items, 5, "nothing kept")
    clock.advance(3600 - 60)  # inside the last two minutes: kubectl would get an expiry in the past
    source = FakeSource(clock)
    source.signed_in = True
    fresh = _service(clock, submit, store, source).get_token(profile(), person_present=False).result(5)
    assert source.silent_calls == [False]
    assert fresh.access_token == "tok-1" and fresh.obtained_at == clock.now()


def test_modes_that_keep_no_sign_in_keep_no_token(clock: FakeClock, submit: ThreadSubmit,
                                                  store: MemoryStore) -> None:
    source = FakeSource(clock)
    source.signed_in = True
    service = _service(clock, submit, store, source)
    for login in ("spn", "msi", "azurecli", "workloadidentity"):
        service.get_token(profile(login=login), person_present=False).result(5)
    service.get_token(profile(), person_present=True).result(5)  # and one that does, to wait on
    wait_for(lambda: store.items, 5, "nothing kept")
    assert list(store.items) == [token_vault.entry_name(profile().key)]


def test_a_profile_known_to_need_a_sign_in_is_not_answered_from_the_vault(
        clock: FakeClock, submit: ThreadSubmit, store: MemoryStore) -> None:
    registry = MemoryRegistry()
    first = _service(clock, submit, store, registry=registry)
    first.get_token(profile(), person_present=True).result(5)
    wait_for(lambda: store.items, 5, "nothing kept")
    for record in registry.records:
        record["needs_sign_in"] = True  # e.g. the refresh token was revoked before the restart
    source = FakeSource(clock)
    second = _service(clock, submit, store, source, registry)
    second.restore()
    token = second.get_token(profile(), person_present=True).result(5)
    assert source.silent_calls == [False] and source.sign_in_calls == 1  # its source decided
    assert token.obtained_at == clock.now() and second.stats()["served_from_vault"] == 0


def test_logout_forgets_the_kept_token(clock: FakeClock, submit: ThreadSubmit, store: MemoryStore) -> None:
    service = _service(clock, submit, store)
    service.get_token(profile(), person_present=True).result(5)
    wait_for(lambda: store.items, 5, "nothing kept")
    service.logout(profile().key)
    assert store.items == {}


def test_a_refresh_overtaken_by_logout_keeps_nothing_in_the_vault(clock: FakeClock, submit: ThreadSubmit,
                                                                  store: MemoryStore) -> None:
    source = FakeSource(clock)
    service = _service(clock, submit, store, source)
    service.get_token(profile(), person_present=True).result(5)
    wait_for(lambda: store.items, 5, "nothing kept")
    source.silent_gate = threading.Event()
    refreshing = service.refresh(profile().key)
    wait_for(lambda: len(source.silent_calls) == 1, 5, "the refresh did not start")
    service.logout(profile().key)
    source.signed_in = True  # the provider would still have answered
    source.silent_gate.set()
    with pytest.raises(LoginRequired, match="signed out"):
        refreshing.result(5)
    submit.pool.shutdown(wait=True)  # every flight thread has finished: nothing can write any more
    assert store.items == {}


def test_a_vault_that_cannot_be_written_costs_only_the_next_restart(
        clock: FakeClock, submit: ThreadSubmit, caplog: pytest.LogCaptureFixture) -> None:
    service = _service(clock, submit, FailingStore())
    token = service.get_token(profile(), person_present=True).result(5)
    assert token.access_token == "tok-1"
    wait_for(lambda: "could not keep the token" in caplog.text, 5, "the failure was not logged")
    assert token.access_token not in caplog.text


def test_the_entry_round_trips_and_anything_else_reads_as_absent() -> None:
    token = Token("a.b.c", expires_on=1.5, obtained_at=0.5, account="bob", home_account_id="oid.tid",
                  tenant_id="tid")
    assert token_vault.decode(token_vault.encode(token, 1.25)) == token
    entry = token_vault.read_entry(token_vault.encode(token, 1.25))
    assert entry is not None and entry["serve_until"] == 1.25 and entry["access_token"] == "a.b.c"
    assert token_vault.read_entry('{"v":1,"access_token":"t","expires_on":2,"serve_until":true}') is None
    for text in ("", "{", "[]", '{"v":2}', '{"v":1}', '{"v":1,"access_token":5,"expires_on":1,"obtained_at":0,'
                 '"account":"","home_account_id":"","tenant_id":""}',
                 '{"v":1,"access_token":"","expires_on":1,"obtained_at":0,"account":"","home_account_id":"",'
                 '"tenant_id":""}'):
        assert token_vault.decode(text) is None, text


def test_the_light_reader_is_asked_first_and_the_store_only_when_it_cannot_tell(store: MemoryStore) -> None:
    token = Token("a.b.c", expires_on=10.0, obtained_at=0.0)
    KeyringTokenVault(store).save("k1", token, 9.0)
    reader = SilentReader()
    assert KeyringTokenVault(store, reader).load("k1") == token
    assert reader.reads == 1
    other = Token("d.e.f", expires_on=20.0, obtained_at=0.0)
    answering = MemoryStore()
    answering.save(token_vault.entry_name("k1"), token_vault.encode(other, 19.0))
    assert KeyringTokenVault(store, answering).load("k1") == other  # what the reader can tell, it tells


def test_a_profile_known_from_before_the_restart_warms_up_from_the_vault(clock: FakeClock, submit: ThreadSubmit,
                                                                        store: MemoryStore) -> None:
    registry = MemoryRegistry()
    _service(clock, submit, store, registry=registry).get_token(profile(), person_present=True).result(5)
    wait_for(lambda: store.items, 5, "nothing kept")
    source = FakeSource(clock)
    restarted = _service(clock, submit, store, source, registry)
    assert restarted.restore() == 1
    assert restarted.run_due() == 1  # the warm-up of the remembered profile
    wait_for(lambda: restarted.snapshot()[0].state == "ok", 5, "the warm-up did not take the kept token")
    assert source.silent_calls == []  # no sign-in source (msal, the provider) was needed for it
    assert restarted.next_due() is not None and restarted.next_due() > clock.now()  # refreshed at its time


class ForgetFailingStore(MemoryStore):
    def delete(self, name: str) -> None:
        raise StoreUnavailable("the keyring is locked")


def test_a_kept_token_that_cannot_be_deleted_still_lets_the_sign_in_go_and_says_so(
        clock: FakeClock, submit: ThreadSubmit) -> None:
    source = FakeSource(clock)
    service = _service(clock, submit, ForgetFailingStore(), source)
    service.get_token(profile(), person_present=True).result(5)
    with pytest.raises(StoreUnavailable, match="locked"):
        service.logout(profile().key)
    assert source.signed_out == [profile()]  # the source forgot the sign-in all the same
    assert service.cached(profile()) is None
