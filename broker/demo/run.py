"""``kubetray demo``: start the stand-ins and a private broker, run kubectl through it, clean up.

Nothing of the person's own setup is touched: the broker gets its own runtime, state and log
directories and kubectl its own kubeconfig, all in one temporary directory; the only thing written
outside it, the demo's token cache in the OS keyring, is deleted at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from broker.demo.apiserver import DemoApiServer
from broker.demo.authority import TENANT, DemoAuthority
from broker.demo.pki import DemoPki
from broker.execplugin.kubelogin_args import parse_get_token
from broker.ipc import instance

SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"  # AKS's server application id
CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"  # Azure kubelogin's public client id


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _kubeconfig(path: str, server: str, ca_pem: bytes, command: str, args: list[str], env: dict[str, str]) -> None:
    import base64

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "kubetray-demo",
        "clusters": [{"name": "kubetray-demo", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "contexts": [{"name": "kubetray-demo", "context": {"cluster": "kubetray-demo", "user": "kubetray-demo"}}],
        "users": [{"name": "kubetray-demo", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": command, "args": args,
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "interactiveMode": "IfAvailable", "provideClusterInfo": False}}}],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)


def run_demo(*, auto_approve: bool = False,
             authority: Callable[[DemoPki, bool], DemoAuthority] = DemoAuthority) -> int:
    """Run the demo; returns the exit status (0 when kubectl succeeded through the broker).

    ``authority`` builds the demo's sign-in authority from its PKI and ``auto_approve`` (tests pass one
    that also remembers what it issued, for their leak check)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubetray: the demo runs kubectl, which is not on PATH; install kubectl and try again", file=sys.stderr)
        return 2
    from broker.process.launcher import ensure_launcher

    root = tempfile.mkdtemp(prefix="kubetray-demo-")
    pki = DemoPki.create(root)
    idp = authority(pki, auto_approve).start()
    apiserver = DemoApiServer(pki, idp.issuer, SERVER_ID, CLIENT_ID).start()
    dirs = {name: os.path.join(root, name) for name in ("run", "state", "log")}
    for path in dirs.values():
        os.makedirs(path, mode=0o700)
    private = {"KUBETRAY_RUNTIME_DIR": dirs["run"], "KUBETRAY_STATE_DIR": dirs["state"],
               "KUBETRAY_LOG_DIR": dirs["log"]}
    args = ["get-token", "--login", "interactive", "--server-id", SERVER_ID,
            "--client-id", CLIENT_ID, "--tenant-id", TENANT, "--authority-host", idp.url + "/",
            "--disable-instance-discovery"]
    kubeconfig = os.path.join(root, "kubeconfig")
    _kubeconfig(kubeconfig, apiserver.url, pki.ca_pem, ensure_launcher(), args, private)
    env = {k: v for k, v in os.environ.items() if k != "KUBETRAY_SOCKET"}
    env.update(private, KUBECONFIG=kubeconfig, REQUESTS_CA_BUNDLE=pki.ca_path, CURL_CA_BUNDLE=pki.ca_path,
               NO_PROXY=",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"])))
    daemon: subprocess.Popen[bytes] | None = None
    status = 1
    try:
        _say(f"a sign-in authority at {idp.url} and an API server at {apiserver.url} (both on this machine)")
        print(f"   kubeconfig: {kubeconfig}\n   its user runs the shim: {ensure_launcher()} get-token …")
        _say("starting a private kubetray broker for the demo")
        with open(os.path.join(dirs["log"], "daemon.out"), "wb") as out:
            daemon = subprocess.Popen([sys.executable, "-m", "broker", "run", "--headless"], env=env,
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        if not _wait_for(os.path.join(dirs["run"], "kubetray.sock"), daemon):
            with open(os.path.join(dirs["log"], "daemon.out"), encoding="utf-8", errors="replace") as f:
                print(f"kubetray: the demo broker did not start: {f.read().strip()[-500:]}", file=sys.stderr)
            return 1
        for command in (["get", "pods"], ["auth", "whoami"], ["get", "pods"]):
            _say("$ kubectl " + " ".join(command) + ("   (signs in once: follow the prompt)" if command == [
                "get", "pods"] and status == 1 else "   (served from the broker's memory)"))
            result = subprocess.run([kubectl, *command], env=env, check=False, timeout=600)
            if result.returncode != 0:
                print(f"kubetray: `kubectl {' '.join(command)}` failed; see the messages above", file=sys.stderr)
                return 1
            status = 0
        _say("done: one sign-in served every kubectl call. Cleaning up.")
        return 0
    finally:
        _stop(daemon, dirs["run"])
        _forget(args)
        apiserver.stop()
        idp.stop()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for(socket: str, daemon: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and daemon.poll() is None:
        if instance.probe(socket, timeout=1.0) is not None:
            return True
        time.sleep(0.1)
    return False


def _stop(daemon: subprocess.Popen[bytes] | None, run_dir: str) -> None:
    if daemon is None:
        return
    try:
        for _ in instance.request(os.path.join(run_dir, "kubetray.sock"), "shutdown", timeout=5):
            pass
    except OSError:
        pass
    try:
        daemon.wait(15)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


def _forget(args: list[str]) -> None:
    """Delete the demo's token cache and latest token from the OS keyring (their names come from the
    demo's authority)."""
    from broker.app import forget_at_rest
    from broker.core.errors import KubetrayError

    try:
        forget_at_rest(parse_get_token(args))
    except KubetrayError as exc:
        print(f"kubetray: could not remove the demo's keyring entry: {exc.message}", file=sys.stderr)
