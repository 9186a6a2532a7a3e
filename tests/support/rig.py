"""The end-to-end rig: test authority + API-server stand-in + a kubeconfig whose user runs the shim.

One ``Rig`` per test: its own runtime dir (so its own daemon), state and log dirs, browser log and
kubeconfig, inside the test's tmp_path; the keyring and D-Bus session are the test run's private ones.
Every command it runs is recorded (stdout and stderr) so the suite can check no token leaked.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.apiserver import ApiServer
from tests.support.authority import EntraAuthority
from tests.support.tls import TestCA

SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"  # the AKS server app id, same for every cluster
CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"  # the Azure kubelogin public client id
SUPPORT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

# Everything any rig ran, for the leak check at the end of the session.
TRANSCRIPTS: list[bytes] = []


def shim_command() -> str:
    """The installed console script, by absolute path (as a kubeconfig must name it)."""
    path = BIN / "kubetray-shim"
    if not path.exists():
        raise RuntimeError("kubetray is not installed in the test environment; run scripts/test")
    return str(path)


@dataclass
class Rig:
    root: Path
    base_env: dict[str, str]
    authority: EntraAuthority
    apiserver: ApiServer
    ca: TestCA
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("run", "state", "log"):
            (self.root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        bundle = self.ca.bundle(self.root / "tls")
        self.env = dict(self.base_env)
        self.env.update(
            KUBETRAY_RUNTIME_DIR=str(self.root / "run"),
            KUBETRAY_STATE_DIR=str(self.root / "state"),
            KUBETRAY_LOG_DIR=str(self.root / "log"),
            XDG_DATA_HOME=str(self.root / "data"),
            KUBECONFIG=str(self.root / "kubeconfig"),
            REQUESTS_CA_BUNDLE=str(bundle),
            CURL_CA_BUNDLE=str(bundle),
            SSL_CERT_FILE=str(bundle),
            BROWSER=f"{shlex.quote(sys.executable)} {shlex.quote(str(SUPPORT / 'browser.py'))} %s &",
            TEST_BROWSER_LOG=str(self.root / "browser.log"),
            TEST_BROWSER_CONTROL=str(self.root / "browser.control"),
            # The daemon a shim starts inherits only an allowlist (shim/spawn.py); the scripted browser it
            # opens reads these, so the rig names them, as a person would for a custom BROWSER script.
            KUBETRAY_DAEMON_ENV="TEST_BROWSER_LOG,TEST_BROWSER_CONTROL,TEST_BROWSER_LOGIN",
            NO_PROXY="127.0.0.1,localhost",
            PATH=f"{BIN}{os.pathsep}{self.base_env.get('PATH', '')}",
        )
        self.env.pop("DISPLAY", None)
        self.env.pop("WAYLAND_DISPLAY", None)
        self.write_kubeconfig()

    # -- configuration ----------------------------------------------------------------------------
    @property
    def socket(self) -> Path:
        return self.root / "run" / "kubetray.sock"

    def get_token_args(self, login: str = "interactive", *extra: str) -> list[str]:
        return [
            "get-token", "--login", login, "--server-id", SERVER_ID, "--client-id", CLIENT_ID,
            "--tenant-id", self.authority.tenant_id, "--authority-host", self.authority.url + "/",
            "--disable-instance-discovery", *extra,
        ]

    def write_kubeconfig(
        self, login: str = "interactive", *extra: str, api_version: str = "v1", command: str | None = None
    ) -> None:
        ca_data = base64.b64encode(self.ca.pem_bytes).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "aks", "cluster": {"server": self.apiserver.url,
                                                      "certificate-authority-data": ca_data}}],
            "users": [{"name": "aks-user", "user": {"exec": {
                "apiVersion": f"client.authentication.k8s.io/{api_version}",
                "command": command or shim_command(),
                "args": self.get_token_args(login, *extra),
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": False,
            }}}],
            "contexts": [{"name": "aks", "context": {"cluster": "aks", "user": "aks-user"}}],
            "current-context": "aks",
        }
        (self.root / "kubeconfig").write_text(json.dumps(config, indent=1))

    def browser(self, behaviour: str) -> None:
        """What the scripted person does with the next browser tab: approve, ignore or deny."""
        (self.root / "browser.control").write_text(behaviour)

    def browser_launches(self) -> int:
        log = self.root / "browser.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    # -- running things ---------------------------------------------------------------------------
    def run(
        self, *argv: str, timeout: float = 120, credential_on_stdout: bool = False, **env: str
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command in the rig's environment; its output is kept for the leak check, except a
        stdout that is meant to carry a credential (the shim's, called directly)."""
        proc = subprocess.run(list(argv), env={**self.env, **env}, capture_output=True, timeout=timeout,
                              input=b"", check=False)
        TRANSCRIPTS.append(proc.stderr if credential_on_stdout else proc.stdout + proc.stderr)
        return proc

    def kubectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return self.run("kubectl", *args, timeout=timeout)

    def kubetray(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return self.run(str(BIN / "kubetray"), *args, timeout=timeout)

    def status(self) -> dict[str, Any]:
        proc = self.kubetray("status", "--json")
        return dict(json.loads(proc.stdout))

    def daemon_pid(self) -> int | None:
        doc = self.status()
        return int(doc["pid"]) if doc.get("running") else None

    def daemon_log(self) -> str:
        path = self.root / "log" / "kubetray.log"
        return path.read_text() if path.exists() else ""

    def stop_daemon(self) -> None:
        """Stop the daemon this rig started (by its pid), waiting until it is gone."""
        try:
            pid = self.daemon_pid()
        except (ValueError, subprocess.TimeoutExpired):
            pid = None
        if pid is None:
            return
        self.kubetray("stop", timeout=20)
        if not _wait_gone(pid, 10):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # exited; waiting for its parent to reap it
        except FileNotFoundError:
            return True
        # a child we never waited for would linger as a zombie; reap it if it is ours
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    return False
