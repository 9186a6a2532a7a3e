"""Remote use like ssh-agent forwarding, for real: OpenSSH forwards the daemon's socket to another user.

The "desktop" is this test's rig (daemon, keyring, scripted browser) running as root. The "ssh host" is
user nobody (uid 65534) with its own HOME, no runtime dir, a hostname of its own (``unshare --uts``)
and the single-file shim run as ``python3 -IS kubetray-shim.pyz``; the daemon's socket sits in a
root-only directory, so the only way in is the socket a real sshd creates for ``ssh -N -R``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import daemon_proc
from tests.support.rig import TRANSCRIPTS, Rig
from tests.support.sshd import Sshd, available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not available() or not shutil.which("unshare") or not shutil.which("setpriv"),
                       reason="needs root, OpenSSH's sshd and ssh (scripts/test installs them), unshare, setpriv"),
]

NOBODY = 65534
REMOTE_HOST = "devbox-remote"


@dataclass
class Remote:
    """The ssh host side: nobody's home with the zipapp shim, its kubeconfig and the forwarded socket."""

    home: Path
    socket: Path
    sshd: Sshd

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """kubectl as nobody, on "another host", with nothing of the desktop's environment."""
        env = {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "KUBECONFIG": str(self.home / "kubeconfig"),
               "LANG": "C.UTF-8"}
        argv = ["unshare", "--uts", "sh", "-c", f'hostname {REMOTE_HOST} && exec "$@"', "sh",
                "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
                "kubectl", *args]
        proc = subprocess.run(argv, env=env, capture_output=True, timeout=120, input=b"", check=False,
                              cwd=str(self.home))
        TRANSCRIPTS.append(proc.stdout + proc.stderr)
        return proc

    def ask(self, request: dict[str, object]) -> list[dict[str, object]]:
        """One raw request through the forwarded socket, as nobody (what root on an ssh host could send)."""
        code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                "s.sendall(sys.argv[2].encode()+b'\\n'); b=b''\n"
                "while (c:=s.recv(65536)): b+=c\nsys.stdout.write(b.decode())")
        proc = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
                               "/usr/bin/python3", "-I", "-c", code, str(self.socket), json.dumps(request)],
                              capture_output=True, timeout=30, check=False, env={"PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr.decode()
        return [json.loads(line) for line in proc.stdout.splitlines()]


def _chown_tree(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), NOBODY, NOBODY)
    os.chown(path, NOBODY, NOBODY)


@pytest.fixture
def remote(rig: Rig) -> Iterator[Remote]:
    daemon = daemon_proc.start(rig)
    # /tmp, not tmp_path: pytest's base temp dir is root-only, and nobody must reach its own home.
    base = Path(tempfile.mkdtemp(prefix="kt-remote-"))
    os.chmod(base, 0o755)
    home = base / "home"
    home.mkdir(mode=0o700)
    sshd = Sshd(base / "sshd", user="nobody").start()
    try:
        shim = rig.kubetray("remote", "shim", "-o", str(home / "kubetray-shim.pyz.tmp"))
        assert shim.returncode == 0, shim.stderr.decode()
        (home / ".kubetray").mkdir(mode=0o700)
        os.replace(home / "kubetray-shim.pyz.tmp", home / ".kubetray" / "kubetray-shim.pyz")
        config = rig.kubetray("remote", "kubeconfig", "--context", "aks", "--remote-home", str(home),
                              "--python", "/usr/bin/python3")
        assert config.returncode == 0, config.stderr.decode()
        (home / "kubeconfig").write_bytes(config.stdout)
        _chown_tree(home)
        socket = home / ".kubetray" / "kubetray.sock"
        ssh_config = rig.kubetray("remote", "ssh-config", "devbox", "--remote-home", str(home)).stdout.decode()
        assert f"RemoteForward {socket} {rig.socket}" in ssh_config
        sshd.forward(str(socket), str(rig.socket))
        yield Remote(home, socket, sshd)
    finally:
        sshd.stop()
        daemon_proc.stop(daemon)
        shutil.rmtree(base, ignore_errors=True)


def test_the_forwarded_socket_is_the_remote_users_own_and_private(remote: Remote) -> None:
    st = remote.socket.lstat()
    assert (st.st_uid, st.st_mode & 0o777) == (NOBODY, 0o600)  # sshd's StreamLocalBindMask 0177


def test_a_sign_in_asked_for_on_the_ssh_host_opens_on_the_desktop_and_kubectl_there_gets_its_token(
    rig: Rig, remote: Remote
) -> None:
    first = remote.kubectl("get", "pods")
    assert first.returncode == 0, first.stderr.decode()
    assert b"hello-kubetray" in first.stdout
    assert f"came from {REMOTE_HOST} through ssh".encode() in first.stderr
    assert b"look there" in first.stderr
    assert rig.authority.counts["sign_ins"] == 1
    assert rig.browser_launches() == 1  # the desktop's (scripted) browser
    again = remote.kubectl("auth", "whoami", "-o", "json")
    assert again.returncode == 0, again.stderr.decode()
    assert json.loads(again.stdout)["status"]["userInfo"]["username"] == rig.authority.user.upn
    assert again.stderr == b""
    assert rig.authority.counts["sign_ins"] == 1  # served from the daemon's memory
    status = rig.status()
    recent = status["remote"]["recent"]
    key = status["profiles"][0]["key"]
    assert [(u["origin"], u["via"], u["profile"], u["refused"], u["count"]) for u in recent] == [
        (REMOTE_HOST, "ssh", key, False, 2)]
    text = rig.kubetray("status").stdout.decode()
    assert f"{REMOTE_HOST} via ssh  profile {key}  served (2 calls)" in text


def test_a_local_only_profile_is_refused_to_the_ssh_host_and_still_served_at_the_desktop(
    rig: Rig, remote: Remote
) -> None:
    assert rig.kubectl("get", "pods").returncode == 0  # signed in at the desktop
    denied = rig.kubetray("remote", "deny", "--context", "aks")
    assert denied.returncode == 0, denied.stderr.decode()
    refused = remote.kubectl("get", "pods")
    assert refused.returncode != 0
    assert b"is local-only" in refused.stderr
    assert b"hello-kubetray" not in refused.stdout
    assert rig.kubectl("get", "pods").returncode == 0
    status = rig.status()
    key = status["profiles"][0]["key"]
    assert status["remote"]["local_only"] == [key]
    assert status["remote"]["recent"][0]["refused"] is True
    assert "local-only" in rig.kubetray("status").stdout.decode()
    allowed = rig.kubetray("remote", "allow", key[:6])
    assert allowed.returncode == 0, allowed.stderr.decode()
    served = remote.kubectl("get", "pods")
    assert served.returncode == 0, served.stderr.decode()


def test_the_ssh_host_gets_credentials_but_no_management(rig: Rig, remote: Remote) -> None:
    for op in ("status", "logout", "shutdown", "login", "remote"):
        (reply,) = remote.ask({"v": 1, "op": op, "all": True, "key": "x", "local_only": False})
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), reply
    (pong,) = remote.ask({"v": 1, "op": "ping"})
    assert pong["type"] == "pong"
    assert rig.daemon_pid() is not None  # still running: shutdown was refused


def test_with_the_ssh_session_closed_the_remote_shim_says_so_and_starts_nothing(remote: Remote) -> None:
    remote.sshd.stop()
    proc = remote.kubectl("get", "pods")
    assert proc.returncode != 0
    assert b"is the ssh session that forwards it open?" in proc.stderr
    assert not (remote.home / ".kubetray" / "start.log").exists()


def test_a_connection_relayed_by_sshd_counts_as_forwarded_too(rig: Rig) -> None:
    """``ssh -L`` into the desktop: sshd's session process is the daemon's peer (not the ssh client)."""
    daemon = daemon_proc.start(rig)
    base = Path(tempfile.mkdtemp(prefix="kt-sshd-relay-"))
    sshd = Sshd(base / "sshd", user="nobody", also_allow=("root",)).start()
    try:
        relay = base / "relay.sock"
        sshd.forward(str(relay), str(rig.socket), direction="-L", user="root")
        (reply,) = daemon_proc.ask(relay, b'{"v":1,"op":"status"}\n')
        assert (reply["type"], reply["code"]) == ("error", "forbidden")
        assert "forwarded through sshd" in str(reply["message"])
        (direct,) = daemon_proc.ask(rig.socket, b'{"v":1,"op":"status"}\n')
        assert direct["type"] == "status"  # the same request, locally
    finally:
        sshd.stop()
        daemon_proc.stop(daemon)
        shutil.rmtree(base, ignore_errors=True)
