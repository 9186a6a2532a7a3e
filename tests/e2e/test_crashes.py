"""SIGKILL at random moments while the daemon refreshes and writes the keyring: the cache survives."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import time

import pytest

from broker.execplugin.kubelogin_args import parse_get_token
from broker.store.keyring_store import KeyringSecretStore, default_backend
from tests.support.rig import Rig

pytestmark = pytest.mark.e2e


@pytest.mark.slow
def test_twenty_sigkills_during_refreshes_never_cost_a_sign_in_or_tear_the_cache(rig: Rig) -> None:
    rig.env["KUBETRAY_KEYRING_CHUNK_SIZE"] = "700"  # several chunks per write: more places to be torn
    assert rig.kubectl("get", "pods").returncode == 0
    rng = random.Random(20)  # seeded, so a failure can be replayed
    kills = 0
    for _ in range(20):
        pid = rig.daemon_pid()
        assert pid is not None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as refresher:
            refresher.connect(str(rig.socket))
            refresher.sendall(b'{"v":1,"op":"refresh"}\n')
            time.sleep(rng.uniform(0.0, 0.15))  # before, during or after the provider call and the keyring write
            os.kill(pid, signal.SIGKILL)
        kills += 1
        proc = rig.kubectl("get", "pods")
        assert proc.returncode == 0, proc.stderr.decode()
    counts = rig.authority.counts
    print(f"\n{kills} SIGKILLs: {counts['refreshes']} refreshes reached the provider, "
          f"{counts['sign_ins']} sign-in in all")
    assert counts["sign_ins"] == 1  # every restart came back from the keyring
    assert counts["refreshes"] >= 1
    profile = parse_get_token(rig.get_token_args())
    cache = KeyringSecretStore(default_backend(), chunk_size=700).load(profile.cache_name)
    assert cache is not None
    assert json.loads(cache)["RefreshToken"]  # whole and parseable, never torn
