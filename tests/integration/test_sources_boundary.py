"""The Entra source against the test authority at its boundaries: where the browser's redirect is
heard, what a hostile authority's words look like by the time a person reads them, and what an
unreachable instance discovery says."""

from __future__ import annotations

import functools
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from broker.core.errors import AuthError, ProviderUnreachable
from broker.core.model import NO_CONTEXT
from broker.sources._loopback import LoopbackReceiver
from broker.sources._msal import MsalSource
from broker.store.keyring_store import KeyringSecretStore
from tests.support.authority import EntraAuthority
from tests.support.fakes import FakeClock, profile
from tests.unit.test_keyring_store_chunking import InMemoryKeyring

SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
_POPEN_WARNING = "ignore:subprocess .* is still running:ResourceWarning"


def sessions(bundle: Path, proxy: str = "") -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # the environment's proxy and CA variables are not this test's
        if proxy:
            http.proxies = {"https": proxy}
        http.request = functools.partial(http.request, verify=str(bundle))  # type: ignore[method-assign]
        yield http


def source(bundle: Path, *, proxy: str = "", can_open_browser: bool = False) -> MsalSource:
    def factory(_network: object) -> requests.Session:
        return next(sessions(bundle, proxy))

    return MsalSource(KeyringSecretStore(InMemoryKeyring()), FakeClock(), http_client_factory=factory,
                      can_open_browser=lambda: can_open_browser)


def listening_sockets_of_this_process() -> dict[int, tuple[str, int]]:
    """inode → (local address, port) of every TCP socket this process has listening, from /proc."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            ours.add(int(target[8:-1]))
    found: dict[int, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], int(fields[9])
                if state != "0A" or inode not in ours:  # 0A: LISTEN
                    continue
                hex_address, hex_port = local.split(":")
                raw = bytes.fromhex(hex_address)
                # /proc prints the address as native-endian 32-bit words.
                if sys.byteorder == "little":
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                words = raw
                found[inode] = (socket.inet_ntop(family, words), int(hex_port, 16))
    return found


def test_the_loopback_receiver_listens_on_127_0_0_1_only() -> None:
    with LoopbackReceiver() as receiver:
        host, port = receiver.address()
        assert host == "127.0.0.1"
        assert ("127.0.0.1", port) in listening_sockets_of_this_process().values()


@pytest.mark.filterwarnings(_POPEN_WARNING)
def test_an_interactive_sign_in_hears_the_redirect_on_loopback_only(
    authority: EntraAuthority, bundle: Path, scripted_browser: Path
) -> None:
    before = listening_sockets_of_this_process()
    during: dict[int, tuple[str, int]] = {}
    done = threading.Event()

    def watch() -> None:  # every listener this process opens while the sign-in runs
        while not done.is_set():
            during.update({k: v for k, v in listening_sockets_of_this_process().items() if k not in before})
            done.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        entra = source(bundle, can_open_browser=True)
        token = entra.sign_in(profile(authority=authority.authority_url, client_id=CLIENT_ID, server_id=SERVER_ID,
                                      tenant_id=authority.tenant_id, instance_discovery=False),
                              NO_CONTEXT, lambda _m: None)
    finally:
        done.set()
        watcher.join()
    assert token.access_token and authority.counts["sign_ins"] == 1
    redirect_port = int(authority.last_authorize_params()["redirect_uri"].rsplit(":", 1)[1])
    assert list(during.values()) == [("127.0.0.1", redirect_port)]  # one listener, loopback, the one used


def test_a_hostile_device_code_answer_reaches_the_person_without_escapes(
    authority: EntraAuthority, bundle: Path
) -> None:
    authority.fail_next("/devicecode", 200, body={
        "device_code": "dc", "user_code": "AB\x1b[8mCD", "verification_uri": "https://x.test/\x1b]8;;https://evil/\x07",
        "expires_in": 900, "interval": 1,
        "message": "\x1b]0;owned\x07\x1b[2JTo sign in, open https://x.test/device\u202e and enter AB\x9b8mCD.",
    })
    authority.fail_next("/token", 400, body={
        "error": "invalid_grant\x1b[0m", "error_codes": [70000],
        "error_description": "AADSTS70000: \x1b]0;pwned\x07The grant\x1b[2J is bad\u202e\r\nTrace ID: 1",
    })
    heard: list[str] = []
    entra = source(bundle)
    with pytest.raises(AuthError) as caught:
        entra.sign_in(profile(login="devicecode", authority=authority.authority_url, client_id=CLIENT_ID,
                              server_id=SERVER_ID, tenant_id=authority.tenant_id, instance_discovery=False),
                      NO_CONTEXT, heard.append)
    assert heard == ["kubetray: To sign in, open https://x.test/device and enter ABCD."]
    message = caught.value.message
    assert "The grant is bad" in message and "AADSTS70000" in message
    for text in (message, caught.value.description, caught.value.error):
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in text), text


def test_unreachable_instance_discovery_names_that_host_and_the_flag(authority: EntraAuthority, bundle: Path) -> None:
    # A proxy that refuses everything: the network of someone whose private authority host is reachable
    # but Microsoft's is not. Without --disable-instance-discovery MSAL asks Microsoft first.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        entra = source(bundle, proxy=proxy)
        with pytest.raises(ProviderUnreachable) as caught:
            entra.acquire_silent(profile(authority=authority.authority_url, client_id=CLIENT_ID,
                                         server_id=SERVER_ID, tenant_id=authority.tenant_id), NO_CONTEXT,
                                         force_refresh=False)
    message = caught.value.message
    assert message.startswith("cannot reach login.microsoftonline.com for MSAL's instance discovery of "
                              f"{authority.authority_url}"), message
    assert "127.0.0.1 is not a Microsoft sign-in host" in message and "--disable-instance-discovery" in message
    assert isinstance(caught.value.__cause__, requests.exceptions.ConnectionError)
