"""The plaintext refusal looks inside keyring's ChainerBackend: a plaintext member is excluded, never used.

The chains here are keyring's own ChainerBackend with keyrings.alt's real PlaintextKeyring in them (its
file lands in a temporary XDG_DATA_HOME, so a test that wrongly wrote to it would show).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer
from keyrings.alt.file import PlaintextKeyring

from broker.core.errors import StoreUnavailable
from broker.store.keyring_store import KeyringSecretStore, check_usable, without_refused
from tests.unit.test_keyring_store_chunking import InMemoryKeyring


@pytest.fixture
def plaintext(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PlaintextKeyring:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    backend = PlaintextKeyring()
    assert str(tmp_path) in backend.file_path
    return backend


def chain_of(monkeypatch: pytest.MonkeyPatch, *members: KeyringBackend) -> chainer.ChainerBackend:
    # keyring discovers the chained backends from what is installed; here they are the test's choice.
    monkeypatch.setattr(chainer.ChainerBackend, "backends", list(members))
    return chainer.ChainerBackend()


def test_a_chain_holding_a_plaintext_member_is_refused_as_it_stands(
    monkeypatch: pytest.MonkeyPatch, plaintext: PlaintextKeyring
) -> None:
    chain = chain_of(monkeypatch, InMemoryKeyring(), plaintext)
    with pytest.raises(StoreUnavailable) as caught:
        check_usable(chain)
    message = caught.value.message
    assert "PlaintextKeyring" in message and "chained in" in message and "plaintext" in message
    assert "gnome-keyring" in message and "\n" not in message
    assert not Path(plaintext.file_path).exists()  # the check refused before probing anything


def test_the_plaintext_member_is_excluded_and_the_secure_one_serves(
    monkeypatch: pytest.MonkeyPatch, plaintext: PlaintextKeyring
) -> None:
    secure = InMemoryKeyring()
    chosen = without_refused(chain_of(monkeypatch, secure, plaintext))
    assert chosen is secure
    check_usable(chosen)
    store = KeyringSecretStore(chosen, chunk_size=8)
    store.save("cache", "a refresh token, long enough to be chunked")
    assert store.load("cache") == "a refresh token, long enough to be chunked"
    assert not Path(plaintext.file_path).exists()


def test_two_secure_members_stay_chained_without_the_plaintext_one(
    monkeypatch: pytest.MonkeyPatch, plaintext: PlaintextKeyring
) -> None:
    first, second = InMemoryKeyring(), InMemoryKeyring()
    second.set_password("kubetray", "only-here", "found in the second")
    chosen = without_refused(chain_of(monkeypatch, first, plaintext, second))
    assert isinstance(chosen, chainer.ChainerBackend)
    monkeypatch.undo()  # the kept chain must not depend on what keyring discovers later
    assert chosen.backends == [first, second]
    check_usable(chosen)
    assert chosen.get_password("kubetray", "only-here") == "found in the second"
    chosen.set_password("kubetray", "new", "v")
    assert first.get_password("kubetray", "new") == "v" and not Path(plaintext.file_path).exists()


def test_a_chain_of_nothing_but_plaintext_stays_refused(
    monkeypatch: pytest.MonkeyPatch, plaintext: PlaintextKeyring
) -> None:
    chain = chain_of(monkeypatch, plaintext)
    assert without_refused(chain) is chain
    with pytest.raises(StoreUnavailable, match="PlaintextKeyring.*stores secrets in plaintext"):
        check_usable(without_refused(chain))
    assert not Path(plaintext.file_path).exists()


def test_plaintext_chosen_directly_is_refused(plaintext: PlaintextKeyring) -> None:
    with pytest.raises(StoreUnavailable, match="^The keyring backend file PlaintextKeyring stores secrets in plain"):
        check_usable(plaintext)
