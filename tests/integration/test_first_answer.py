"""A daemon that has just started answers the callers already waiting from the token vault, before
asyncio, msal, requests, keyring or the tray are imported; what it cannot answer reaches the full server
untouched and is answered there.

Run in a fresh interpreter (the test process has imported everything): the probe holds every heavy
import until the test releases it, so "answered without them" is a fact, not a race.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backends import SecretService

from broker.core.model import Token
from broker.execplugin.kubelogin_args import parse_exec
from broker.ipc.request import digest
from broker.store.keyring_store import KeyringSecretStore
from broker.store.request_index import JsonRequestIndex
from broker.store.token_vault import KeyringTokenVault
from tests.support.session import IsolatedSession

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the early answers read the "
                                "Secret Service directly; elsewhere the vault is read after the keyring loads")

# What the first answer must not wait for: the server's asyncio, the sign-in and keyring libraries, the tray,
# and the parser and model behind the full daemon (dataclasses, argparse).
HEAVY = ("asyncio", "msal", "requests", "keyring", "secretstorage", "pystray", "PIL", "ruamel", "jwt", "cryptography",
         "gi", "dataclasses", "argparse")
ARGV = ["get-token", "--login", "interactive", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630",
        "--client-id", "80faf920-1908-4b52-b5ef-a8e7bedfc67a", "--tenant-id", "first-answer-tenant"]
SAVED = "saved.access.token-first-answer"

_PROBE = r"""
import json, os, socket, sys, threading, time

from tests.support.probes import hold, read_line

heavy = set(json.loads(sys.argv[3]))
release = hold(heavy)
from broker import app
from broker.ipc import unix
from broker.process.paths import Paths
from shim.main import encode_request

runtime = sys.argv[1]
paths = Paths(runtime_dir=runtime, socket=runtime + "/kubetray.sock", state_dir=sys.argv[2], log_dir=sys.argv[2])
requests = json.loads(sys.argv[4])
built = {}


def open_store():
    release.wait(30)
    return app.build_store()


def build():
    listener = unix.listen(paths.socket)
    adopted = app.answer_first(paths, listener, first_wait=10)
    built["daemon"] = app.build_daemon(paths, open_store=open_store, listener=listener, adopted=adopted)
    built["daemon"].start()


def ask(line):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(paths.socket)
        s.sendall(line)
        return read_line(s).decode()


builder = threading.Thread(target=build)
builder.start()
while not os.path.exists(paths.socket):
    time.sleep(0.005)
out = {"replies": []}
for kind in requests:
    line = encode_request(json.loads(sys.argv[5]), {}) if kind == "exec" else b'{"v":1,"op":"ping"}\n'
    if kind == "ping":  # not for the early phase: handed over, answered once the server runs
        release.set()
    out["replies"].append(ask(line))
    if "heavy_at_first_reply" not in out:
        out["heavy_at_first_reply"] = sorted({n.split(".")[0] for n in sys.modules} & heavy)
    release.set()  # whatever comes next may be the full server's
builder.join(30)
daemon = built["daemon"]
out["stats"] = daemon.service.stats()
daemon.stop()
print(json.dumps(out))
"""


@pytest.fixture
def saved_token(desktop_session: IsolatedSession, tmp_path: Path) -> Iterator[Token]:
    """A kept token for ARGV's profile, and the request index entry a daemon that served ARGV wrote."""
    key = parse_exec(ARGV, {}, "/").profile.key
    vault = KeyringTokenVault(KeyringSecretStore(SecretService.Keyring()))
    now = time.time()
    token = Token(SAVED, expires_on=now + 3000, obtained_at=now - 600, account="first@answer.test")
    vault.save(key, token, now + 2900)
    JsonRequestIndex(str(tmp_path / "state" / "requests.json")).remember(digest(ARGV, {}, None), key)
    yield token
    vault.forget(key)


def _probe(tmp_path: Path, requests: list[str]) -> dict[str, object]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(runtime), str(tmp_path / "state"), json.dumps(HEAVY),
         json.dumps(requests), json.dumps(ARGV)],
        capture_output=True, text=True, timeout=90, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        cwd=str(Path(__file__).resolve().parents[2]), check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_first_caller_gets_the_saved_token_before_any_heavy_import(tmp_path: Path, saved_token: Token) -> None:
    result = _probe(tmp_path, ["exec", "exec"])
    replies = [json.loads(line) for line in result["replies"]]  # type: ignore[attr-defined]
    assert [r["type"] for r in replies] == ["credential", "credential"]
    status = replies[0]["body"]["status"]
    assert status["token"] == SAVED
    assert result["heavy_at_first_reply"] == [], "the first answer waited for a heavy import"
    # both came from the first answers (the burst), so the full daemon has served nothing yet
    assert result["stats"] == {"served_from_memory": 0, "served_from_vault": 0, "waited": 0, "flights": 0}


def test_what_the_early_phase_cannot_answer_reaches_the_server_untouched(tmp_path: Path,
                                                                        saved_token: Token) -> None:
    result = _probe(tmp_path, ["ping", "exec"])
    replies = [json.loads(line) for line in result["replies"]]  # type: ignore[attr-defined]
    assert replies[0]["type"] == "pong" and replies[0]["pid"] > 0
    # the exec after it is answered by the full server, from the same vault
    assert replies[1]["type"] == "credential" and replies[1]["body"]["status"]["token"] == SAVED
    assert result["stats"]["served_from_vault"] == 1  # type: ignore[index]
