"""Each kubectl call carries its kubeconfig's context: the user entry's exec.env reaches the daemon with
that call (and only the documented variables do), and two accounts of one tenant stay apart.

The daemon is started first WITHOUT the variables (as a daemon started at login, or by another
kubeconfig, would be), so only the call's own context can make these modes work.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from shim.main import FORWARDED_ENV, is_forwarded
from tests.e2e.test_entra_modes import SECRET, SP_ID, _MsiServer, erig, fake_az  # noqa: F401
from tests.support.authority import TestUser
from tests.support.probes import read_line
from tests.support.rig import BIN, SERVER_ID, Rig

pytestmark = pytest.mark.e2e


def _start_daemon_without(rig: Rig, *names: str) -> subprocess.Popen[bytes]:
    """`kubetray run --headless` from the rig's environment minus ``names``; returns once it serves."""
    env = {k: v for k, v in rig.env.items() if k not in names}
    proc = subprocess.Popen([str(BIN / "kubetray"), "run", "--headless"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if rig.status().get("running"):
            return proc
        if proc.poll() is not None:
            pytest.fail(f"the daemon exited with {proc.returncode}: {rig.daemon_log()[-2000:]}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the daemon did not start within 60 s")


def _daemon_environ(rig: Rig) -> dict[str, str]:
    pid = rig.daemon_pid()
    assert pid is not None
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _exec_env(rig: Rig, **env: str) -> None:
    """Put ``env`` into the kubeconfig user entry's exec.env (kubectl merges it over its environment)."""
    path = rig.root / "kubeconfig"
    config = json.loads(path.read_text())
    config["users"][0]["user"]["exec"]["env"] = [{"name": k, "value": v} for k, v in env.items()]
    path.write_text(json.dumps(config))


def _set_client_id(rig: Rig, client_id: str) -> None:
    path = rig.root / "kubeconfig"
    config = json.loads(path.read_text())
    args = config["users"][0]["user"]["exec"]["args"]
    args[args.index("--client-id") + 1] = client_id
    path.write_text(json.dumps(config))


@pytest.fixture
def reaped(erig: Rig) -> Iterator[list[subprocess.Popen[bytes]]]:  # noqa: F811
    """Daemons a test started itself: stopped through the rig first, then reaped (never left running)."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    if procs:
        erig.stop_daemon()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_msi_uses_the_identity_endpoint_of_the_user_entrys_exec_env(
    erig: Rig, reaped: list[subprocess.Popen[bytes]]  # noqa: F811
) -> None:
    server = _MsiServer(erig.authority)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        reaped.append(_start_daemon_without(erig, "IDENTITY_ENDPOINT", "IDENTITY_HEADER"))
        assert "IDENTITY_ENDPOINT" not in _daemon_environ(erig)
        erig.write_kubeconfig("msi")
        _set_client_id(erig, SP_ID)
        _exec_env(erig, IDENTITY_ENDPOINT=f"http://127.0.0.1:{server.server_port}/msi/token",
                  IDENTITY_HEADER=server.header)
        for _ in range(2):
            proc = erig.kubectl("get", "pods")
            assert proc.returncode == 0, proc.stderr.decode()
        assert len(server.requests) == 1
        assert server.requests[0]["resource"] == SERVER_ID and server.requests[0]["client_id"] == SP_ID
        assert "IDENTITY_HEADER" not in _daemon_environ(erig)
        assert server.header not in json.dumps(erig.status())  # the header is a secret: never shown
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_azurecli_finds_az_only_on_the_path_of_the_user_entrys_exec_env(
    erig: Rig, tmp_path: Path, reaped: list[subprocess.Popen[bytes]]  # noqa: F811
) -> None:
    bin_dir = fake_az(erig, tmp_path)
    reaped.append(_start_daemon_without(erig))
    assert str(bin_dir) not in _daemon_environ(erig).get("PATH", "")
    erig.write_kubeconfig("azurecli")
    config_dir = tmp_path / "azure-config"
    _exec_env(erig, PATH=f"{bin_dir}{os.pathsep}{erig.env['PATH']}", AZURE_CONFIG_DIR=str(config_dir))
    proc = erig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()
    logged = (bin_dir / "az.log").read_text().split()
    assert logged[:2] == ["account", "get-access-token"]
    # Without the exec.env PATH the same daemon cannot find az: it is never looked up on its own PATH.
    erig.write_kubeconfig("azurecli", "--subscription", "other")
    proc = erig.kubectl("get", "pods")
    assert proc.returncode != 0 and b"PATH" in proc.stderr


class _RecordingDaemon:
    """A stand-in daemon on the rig's socket: records each request line and answers a credential."""

    def __init__(self, path: Path) -> None:
        self.lines: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        os.chmod(path, 0o600)
        self._sock.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                self.lines.append(read_line(conn))
                body = {"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
                        "status": {"token": "recorded", "expirationTimestamp": "2099-01-01T00:00:00Z"}}
                conn.sendall(b'{"v":1,"type":"credential","body":' + json.dumps(body).encode() + b"}\n")

    def close(self) -> None:
        self._sock.close()
        self._thread.join(5)


def test_only_the_documented_variables_leave_the_shim(erig: Rig) -> None:  # noqa: F811
    fake = _RecordingDaemon(erig.socket)
    try:
        erig.write_kubeconfig("spn")
        _exec_env(erig, AZURE_OPENAI_API_KEY="sk-unrelated-0123", AZURE_CLIENT_SECRET="spn-secret-4567",
                  AZURE_STORAGE_KEY="storage-89ab", ARM_ACCESS_KEY="arm-cdef", AAD_LOGIN_METHOD="spn",
                  HTTPS_PROXY="http://proxy.invalid:3128")
        erig.kubectl("get", "pods")  # the stand-in's token is refused by the API server; the request is what counts
        assert fake.lines, "the shim never reached the socket"
        request = json.loads(fake.lines[0])
        assert request["env"]["AZURE_CLIENT_SECRET"] == "spn-secret-4567"
        assert request["env"]["AAD_LOGIN_METHOD"] == "spn"
        assert request["env"]["HTTPS_PROXY"] == "http://proxy.invalid:3128"
        for name, value in (("AZURE_OPENAI_API_KEY", "sk-unrelated-0123"), ("AZURE_STORAGE_KEY", "storage-89ab"),
                            ("ARM_ACCESS_KEY", "arm-cdef")):
            assert name not in request["env"]
            assert value.encode() not in fake.lines[0]
        assert all(is_forwarded(name) for name in request["env"])
        assert _undocumented() == []
    finally:
        fake.close()


def _undocumented() -> list[str]:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    return [name for name in sorted(FORWARDED_ENV) if f"`{name}`" not in doc]


ADMIN = TestUser(upn="alice-admin@contoso.example", oid="5d0f3c2e-8a41-4b7e-9c6d-2e1f0a9b8c7d", name="Alice (admin)")


def test_two_accounts_of_one_tenant_side_by_side_each_kubeconfig_served_its_own(rig: Rig) -> None:
    alice = rig.authority.user
    rig.authority.add_user(ADMIN)
    base = rig.root / "kubeconfig"
    rig.write_kubeconfig("interactive", "--login-hint", alice.upn)
    config = json.loads(base.read_text())
    admin_user = json.loads(json.dumps(config["users"][0]))
    admin_user["name"] = "aks-admin"
    args = admin_user["user"]["exec"]["args"]
    args[args.index("--login-hint") + 1] = ADMIN.upn
    config["users"].append(admin_user)
    config["contexts"].append({"name": "aks-admin", "context": {"cluster": "aks", "user": "aks-admin"}})
    base.write_text(json.dumps(config))

    def whoami(context: str) -> str:
        proc = rig.kubectl("--context", context, "auth", "whoami", "-o", "json")
        assert proc.returncode == 0, proc.stderr.decode()
        return str(json.loads(proc.stdout)["status"]["userInfo"]["username"])

    assert whoami("aks") == alice.upn
    assert whoami("aks-admin") == ADMIN.upn
    assert rig.browser_launches() == 2  # one sign-in each
    hints = {rig.authority.last_authorize_params().get("login_hint")}
    assert ADMIN.upn in hints
    for _ in range(2):  # and from then on each is served its own account, from memory
        assert whoami("aks-admin") == ADMIN.upn
        assert whoami("aks") == alice.upn
    # A refresh of both (the refresh token of each account) keeps them apart too.
    proc = rig.kubetray("refresh")
    assert proc.returncode == 0, proc.stderr.decode()
    assert whoami("aks") == alice.upn and whoami("aks-admin") == ADMIN.upn
    assert rig.browser_launches() == 2
    profiles = rig.status()["profiles"]
    assert sorted(p["account"] for p in profiles) == sorted([alice.upn, ADMIN.upn])


class _ConnectProxy:
    """An HTTPS proxy (CONNECT only) on 127.0.0.1 that records which host:port each tunnel was for."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b" ", 2)[:2]
            if method != b"CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target.decode())
            host, port = target.decode().rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=30) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                self._pipe(client, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        def one_way(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

        other = threading.Thread(target=one_way, args=(b, a), daemon=True)
        other.start()
        one_way(a, b)
        other.join(30)

    def close(self) -> None:
        self._sock.close()
        self._thread.join(5)


def test_a_proxy_in_one_user_entrys_exec_env_is_used_for_that_profile_only(
    erig: Rig, reaped: list[subprocess.Popen[bytes]]  # noqa: F811
) -> None:
    other_sp = "9b1f2e3d-4c5b-4a69-8877-66554433aa01"
    erig.authority.register_client_secret(SP_ID, SECRET)
    erig.authority.register_client_secret(other_sp, SECRET)
    proxy = _ConnectProxy()
    try:
        reaped.append(_start_daemon_without(erig))
        authority = erig.authority.url.removeprefix("https://")
        # Profile A: its kubeconfig's exec.env sends the identity provider through the proxy.
        erig.write_kubeconfig("spn")
        _set_client_id(erig, SP_ID)
        _exec_env(erig, AZURE_CLIENT_SECRET=SECRET, HTTPS_PROXY=proxy.url, NO_PROXY="")
        proc = erig.kubectl("get", "pods")
        assert proc.returncode == 0, proc.stderr.decode()
        assert authority in proxy.tunnels
        seen = len(proxy.tunnels)
        # Profile B, same daemon, no proxy in its exec.env: its requests go direct.
        erig.write_kubeconfig("spn")
        _set_client_id(erig, other_sp)
        _exec_env(erig, AZURE_CLIENT_SECRET=SECRET)
        proc = erig.kubectl("get", "pods")
        assert proc.returncode == 0, proc.stderr.decode()
        assert len(proxy.tunnels) == seen
        assert erig.authority.counts["token.client_credentials"] == 2
    finally:
        proxy.close()


def test_the_ca_bundle_of_the_user_entrys_exec_env_is_the_trust_for_that_profile(
    erig: Rig, reaped: list[subprocess.Popen[bytes]]  # noqa: F811
) -> None:
    erig.authority.register_client_secret(SP_ID, SECRET)
    reaped.append(_start_daemon_without(erig))  # the daemon itself trusts the test CA
    erig.write_kubeconfig("spn")
    _set_client_id(erig, SP_ID)
    system_only = certifi.where()  # public roots only: no test CA in it
    _exec_env(erig, AZURE_CLIENT_SECRET=SECRET, REQUESTS_CA_BUNDLE=system_only, SSL_CERT_FILE=system_only)
    proc = erig.kubectl("get", "pods")
    assert proc.returncode != 0 and b"TLS verification failed" in proc.stderr, proc.stderr.decode()
    assert erig.authority.counts["token.client_credentials"] == 0
    _exec_env(erig, AZURE_CLIENT_SECRET=SECRET)  # kubectl's own bundle (the rig's, with the test CA)
    proc = erig.kubectl("get", "pods")
    assert proc.returncode == 0, proc.stderr.decode()
