"""`kubetray demo` runs the whole flow with its own stand-ins and leaves nothing behind."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import secretstorage

from tests.support import rig as rig_module
from tests.support.session import IsolatedSession

pytestmark = pytest.mark.e2e
BROWSER = Path(rig_module.__file__).resolve().parent / "browser.py"


def _kubetray_entries() -> set[str]:
    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        return {i.get_attributes().get("username", "") for i in collection.search_items({"service": "kubetray"})}
    finally:
        connection.close()


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
    proc = subprocess.run([str(rig_module.BIN / "kubetray"), "demo", "--auto-approve"], env=env,
                          capture_output=True, timeout=300, input=b"", check=False)
    out = proc.stdout.decode() + proc.stderr.decode()
    rig_module.TRANSCRIPTS.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, out
    assert out.count("hello-kubetray") == 2
    assert "demo@kubetray.example" in out
    assert ("enter the code" in out) is not browser
    assert _kubetray_entries() == before  # the demo's token cache is gone from the keyring
    assert not list(tmp_path.glob("kubetray-demo-*"))  # its directory too
    assert "kubetray.sock" not in " ".join(str(p) for p in tmp_path.rglob("*"))  # and its broker
