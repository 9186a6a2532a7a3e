"""`kubetray demo` runs the whole flow with its own stand-ins and leaves nothing behind."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import secretstorage

from tests.support import rig as rig_module
from tests.support.rig_fixtures import AUTHORITIES
from tests.support.session import IsolatedSession

pytestmark = pytest.mark.e2e
BROWSER = Path(rig_module.__file__).resolve().parent / "browser.py"
ROOT = Path(rig_module.__file__).resolve().parents[2]


def _kubetray_entries() -> set[str]:
    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        return {i.get_attributes().get("username", "") for i in collection.search_items({"service": "kubetray"})}
    finally:
        connection.close()


@pytest.mark.timeout(330)  # the demo's own run may take up to 300 s on a loaded machine
@pytest.mark.parametrize("browser", [True, False], ids=["browser", "device-code"])
def test_the_demo_signs_in_once_runs_kubectl_and_cleans_up(
    desktop_session: IsolatedSession, tmp_path: Path, browser: bool
) -> None:
    env = desktop_session.env
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # where the fast launcher is written
    env["PATH"] = f"{rig_module.BIN}:{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp_path)
    if browser:
        env["BROWSER"] = f"{shlex.quote(sys.executable)} {shlex.quote(str(BROWSER))} %s &"
    before = _kubetray_entries()
    # `kubetray demo`, run through a probe that tells this test (on a pipe) every token the demo issued
    read, write = os.pipe()
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.support.demo_probe", str(write), "--auto-approve"],
                              env=env, cwd=ROOT, capture_output=True, timeout=300, input=b"", check=False,
                              pass_fds=(write,))
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        issued = pipe.read().decode().split()
    AUTHORITIES.append(SimpleNamespace(issued_secrets=lambda: issued))  # the session's leak check
    out = proc.stdout.decode() + proc.stderr.decode()
    rig_module.TRANSCRIPTS.append(proc.stdout + proc.stderr)
    assert len(issued) >= 3  # the demo's access, ID and refresh tokens are in the leak check
    assert proc.returncode == 0, out
    assert out.count("hello-kubetray") == 2
    assert "demo@kubetray.example" in out
    assert ("enter the code" in out) is not browser
    assert _kubetray_entries() == before  # the demo's token cache is gone from the keyring
    assert not list(tmp_path.glob("kubetray-demo-*"))  # its directory too
    assert "kubetray.sock" not in " ".join(str(p) for p in tmp_path.rglob("*"))  # and its broker
