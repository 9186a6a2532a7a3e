"""Logout of a token cache stored in many keyring chunks, end to end: every chunk goes, nothing comes back."""

from __future__ import annotations

import pytest
import secretstorage

from broker.execplugin.kubelogin_args import parse_get_token
from tests.support.rig import Rig

pytestmark = pytest.mark.e2e


def _entries(prefix: str) -> list[str]:
    """The names of the kubetray items in the session's Secret Service that start with ``prefix``."""
    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        names = [i.get_attributes().get("username", "") for i in collection.search_items({"service": "kubetray"})]
    finally:
        connection.close()
    return sorted(n for n in names if n.startswith(prefix))


def test_logout_removes_every_chunk_of_a_large_cache_and_a_restart_finds_nothing(rig: Rig) -> None:
    rig.env["KUBETRAY_KEYRING_CHUNK_SIZE"] = "200"  # MSAL's cache (several KB) in many small entries
    assert rig.kubectl("get", "pods").returncode == 0
    cache = parse_get_token(rig.get_token_args()).cache_name
    stored = _entries(cache)
    chunks = [n for n in stored if "#" in n]
    assert cache in stored and len(chunks) >= 10, stored  # a manifest and its chunks

    out = rig.kubetray("logout", "--all")
    assert out.returncode == 0, out.stderr.decode()
    assert _entries(cache) == []  # the manifest and every chunk, from both slots
    failed = rig.kubectl("get", "pods")
    assert failed.returncode != 0 and b"kubetray login" in failed.stderr

    rig.stop_daemon()  # a new daemon finds nothing to sign in silently with, and remembers the sign-out
    blocked = rig.kubectl("get", "pods")
    assert blocked.returncode != 0 and b"kubetray login" in blocked.stderr
    assert rig.kubetray("login", "--context", "aks").returncode == 0  # a person signs in afresh
    again = rig.kubectl("get", "pods")
    assert again.returncode == 0, again.stderr.decode()
    assert rig.authority.counts["sign_ins"] == 2
    assert len([n for n in _entries(cache) if "#" in n]) >= 10  # and stores the new cache in chunks again
