"""A private OpenSSH server on 127.0.0.1 and an ``ssh -N -R`` client that forwards a Unix socket.

Real OpenSSH (Debian's openssh-server / openssh-client): throwaway host and user keys in a temp dir, a
free port, ``UsePAM no`` and ``StrictModes no`` (the key files live in the test's temp dirs), stream-local
forwarding allowed. The forward's remote end is created by sshd as the remote user, with
``StreamLocalBindMask`` 0177, exactly as on a real ssh host. Both processes are ended by pid in ``stop``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"


def available() -> bool:
    """Both OpenSSH programs are installed (scripts/test installs them)."""
    return os.path.exists(SSHD) and os.path.exists(SSH) and os.getuid() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubetray-test", "-f", str(path)],
                   check=True, capture_output=True)


@dataclass
class Sshd:
    """sshd serving ``user`` with one authorized key; ``forward()`` starts an ssh client with -R."""

    root: Path
    user: str
    also_allow: tuple[str, ...] = ()  # further users who may log in with the same key
    port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> Sshd:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # sshd reads authorized_keys as the remote user
        _keygen(self.root / "host_key")
        _keygen(self.root / "user_key")
        shutil.copy(self.root / "user_key.pub", self.root / "authorized_keys")
        os.chmod(self.root / "authorized_keys", 0o644)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        self.port = _free_port()
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            "ListenAddress 127.0.0.1", f"Port {self.port}", f"HostKey {self.root / 'host_key'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}", "UsePAM no", "StrictModes no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            f"AllowUsers {' '.join((self.user, *self.also_allow))}", "AllowStreamLocalForwarding yes",
            "StreamLocalBindUnlink yes", "X11Forwarding no", "PidFile none", "LogLevel VERBOSE", "",
        ]))
        log = open(self.root / "sshd.log", "wb")  # noqa: SIM115 - kept open for the process's life
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        log.close()
        self._procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if b"Server listening" in (self.root / "sshd.log").read_bytes():
                return self
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {self.log()}")

    def log(self) -> str:
        path = self.root / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def forward(self, remote_socket: str, local_socket: str, env: dict[str, str] | None = None,
                timeout: float = 15, *, direction: str = "-R", user: str = "") -> subprocess.Popen[bytes]:
        """``ssh -N -R remote:local user@127.0.0.1`` (or ``-L``, where sshd connects on the client's
        behalf), run as this user; returns when the socket the forward listens on exists."""
        argv = [SSH, "-N", "-F", "none", "-i", str(self.root / "user_key"), "-p", str(self.port),
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
                direction, f"{remote_socket}:{local_socket}", f"{user or self.user}@127.0.0.1"]
        err = open(self.root / "ssh.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        err.close()
        self._procs.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(remote_socket):
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"ssh did not forward {remote_socket}: "
                           f"{(self.root / 'ssh.log').read_text(errors='replace')} / {self.log()[-2000:]}")

    def stop(self) -> None:
        """End the ssh clients, then sshd (each by its pid), and wait for them."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._procs.clear()
