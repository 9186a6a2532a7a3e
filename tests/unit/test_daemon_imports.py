"""The daemon answers on its endpoint before msal, requests, keyring, pystray, PIL or ruamel are imported.

Run in a fresh interpreter (the test process has imported everything already): build the daemon the way
`kubetray run` does, hold every heavy import (and the keyring opener) until it has answered a ping, and
list what was imported by then. The loader imports msal in parallel by design; holding the imports makes
"answering needs none of them" a fact the test can check without a race.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("msal", "requests", "keyring", "pystray", "PIL", "ruamel", "jwt", "cryptography", "gi")

_PROBE = r"""
import json, sys

from tests.support.probes import hold

heavy = set(json.loads(sys.argv[3]))
release = hold(heavy)  # if answering needed one, the ping would wait for it and time out
from broker.cli import main as cli_main  # what `python -m broker run` imports first
from broker import app
from broker.ipc import instance
from broker.process.paths import Paths

runtime = sys.argv[1]
paths = Paths(runtime_dir=runtime, socket=runtime + "/kubetray.sock", state_dir=sys.argv[2], log_dir=sys.argv[2])


def open_store():
    release.wait(30)
    raise app.KubetrayError("the test's keyring opener")


daemon = app.build_daemon(paths, open_store=open_store)
daemon.start()
pong = instance.probe(paths.socket, timeout=10)
loaded = sorted({name.split(".")[0] for name in sys.modules} & heavy)
release.set()
daemon.loading.wait(30)
daemon.stopping.wait(10)
daemon.stop()
print(json.dumps({"pong": bool(pong), "heavy": loaded, "error": daemon.loading.error.message}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="probes the Unix socket; the pipe is covered by CI on Windows")
def test_the_endpoint_answers_before_any_heavy_import(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(runtime), str(tmp_path / "state"), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        cwd=str(Path(__file__).resolve().parents[2]), check=False,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["pong"], "the daemon did not answer while its sources were loading"
    assert result["heavy"] == [], f"imported before the endpoint answered: {result['heavy']}"
    # and a loader failure reaches whoever waits, as one line
    assert result["error"] == "the test's keyring opener"
