"""The trust boundary at the socket, tried as real other users (the suite runs as root; setpriv drops to them).

The attacker is nobody (65534); the victim is an otherwise unused uid with a temporary home outside
pytest's root-only tmp directory, so both can reach what they must. The victim has no XDG_RUNTIME_DIR,
as on an SSH host without pam_systemd. Real kubectl runs the victim's shim.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.readable import other_user_python, reachable_by_others, readable_copy, shim_launcher
from tests.support.rig import BIN, Rig, shim_command

ATTACKER = 65534
pytestmark = pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                                reason="needs root and setpriv to act as other users")

SECRET = "victim-client-secret-7f3a"
UNRELATED = "sk-victims-unrelated-api-key"


def _as(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def _unused_uid() -> int:
    taken = {p.pw_uid for p in pwd.getpwall()}
    for uid in range(43000, 44000):
        if uid not in taken and not os.path.exists(f"/tmp/kubetray-{uid}") and not _procs_of(uid):
            return uid
    raise AssertionError("no unused uid")


def _procs_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except FileNotFoundError:
                pass
    return pids


@dataclass
class Victim:
    """Another user with a home of their own, running kubetray from a copy any uid can read (the
    checkout may sit in a 0700 home): its shim, and the CLI's client."""

    uid: int
    home: Path
    precious: Path
    shim_path: str
    readable: Path

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
        code = f"import sys; sys.path.insert(0, {str(self.readable)!r}); from broker.cli.main import main; main()"
        return subprocess.run([*_as(self.uid), other_user_python(), "-I", "-c", code, *args], env=self.env(**extra),
                              capture_output=True, timeout=60, check=False, cwd="/")

    def env(self, **extra: str) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": "victim", "LOGNAME": "victim", "PATH": f"{BIN}:/usr/bin:/bin",
                "KUBECONFIG": str(self.home / "kubeconfig"), "AZURE_CLIENT_SECRET": SECRET,
                "OPENAI_API_KEY": UNRELATED, **extra}

    def shim_args(self) -> list[str]:
        return ["get-token", "--login", "spn", "--server-id", "srv", "--client-id", "cli", "--tenant-id", "t",
                "--client-secret", SECRET]

    def kubectl(self, **extra: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*_as(self.uid), "kubectl", "get", "pods", "--request-timeout=20s"],
                              env=self.env(**extra), capture_output=True, timeout=90, check=False, cwd="/")

    def shim(self, **extra: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*_as(self.uid), self.shim_path, *self.shim_args()], env=self.env(**extra),
                              capture_output=True, timeout=60, check=False, cwd="/", stdin=subprocess.DEVNULL)


@pytest.fixture
def victim() -> Iterator[Victim]:
    uid = _unused_uid()
    home = Path(tempfile.mkdtemp(prefix="kubetray-victim-"))
    precious = home / "precious.txt"
    precious.write_text("the victim's own file\n")
    readable = readable_copy(libraries=("ruamel.yaml",))
    # The daemon the victim's shim starts: this venv's, where another uid can reach it (then it starts and
    # finds no keyring for the victim); from a 0700 checkout it cannot start at all. Either way: no daemon.
    daemon_python = sys.executable if reachable_by_others(sys.executable) else other_user_python()
    victim = Victim(uid, home, precious, shim_launcher(readable, daemon_python), readable)
    config = {"apiVersion": "v1", "kind": "Config",
              "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
              "users": [{"name": "u", "user": {"exec": {
                  "apiVersion": "client.authentication.k8s.io/v1", "command": victim.shim_path,
                  "args": victim.shim_args(), "interactiveMode": "Never"}}}],
              "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], "current-context": "c"}
    (home / "kubeconfig").write_text(json.dumps(config))
    for path in (home, precious, home / "kubeconfig"):
        os.chown(path, uid, uid)
    os.chmod(home, 0o700)
    os.chmod(precious, 0o600)
    try:
        yield victim
    finally:
        shutil.rmtree(readable, ignore_errors=True)
        for pid in _procs_of(uid):  # a daemon the victim's shim may have started: ours, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(f"/tmp/kubetray-{uid}", ignore_errors=True)


_LISTENER = textwrap.dedent("""\
    import os, socket, sys
    path, log, ready = sys.argv[1:4]
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    os.chmod(path, 0o777)
    s.listen(16)
    open(ready, "w").close()
    while True:
        c, _ = s.accept()
        c.settimeout(3)
        data = b""
        try:
            while chunk := c.recv(65536):
                data += chunk
        except OSError:
            pass
        c.close()
        with open(log, "a") as f:
            f.write("connection %d bytes %r\\n" % (len(data), data[:200]))
""")


@dataclass
class Listener:
    proc: subprocess.Popen[bytes]
    socket: Path
    log: Path

    def heard(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def attacker_listener() -> Iterator[Listener]:
    """nobody listening on a socket of its own, logging every byte anyone sends it."""
    lair = Path(tempfile.mkdtemp(prefix="kubetray-attacker-"))
    os.chmod(lair, 0o755)
    os.chown(lair, ATTACKER, ATTACKER)
    sock, log, ready = lair / "s", lair / "heard.log", lair / "ready"
    proc = subprocess.Popen([*_as(ATTACKER), "/usr/bin/python3", "-I", "-c", _LISTENER, str(sock), str(log),
                             str(ready)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    try:
        yield Listener(proc, sock, log)
    finally:
        proc.kill()
        proc.communicate()
        shutil.rmtree(lair, ignore_errors=True)


def _untouched(victim: Victim) -> None:
    assert victim.precious.read_text() == "the victim's own file\n"


def test_a_prepared_tmp_directory_with_planted_links_is_never_used(victim: Victim) -> None:
    """Attack 1: nobody pre-creates /tmp/kubetray-<victim uid> world-writable, with links to the victim's file."""
    lair = Path(f"/tmp/kubetray-{victim.uid}")
    prepare = (f"import os; os.mkdir({str(lair)!r}); os.chmod({str(lair)!r}, 0o777);"
               f"[os.symlink({str(victim.precious)!r}, os.path.join({str(lair)!r}, n)) "
               f"for n in ('start.lock', 'start.log', 'daemon.lock')]")
    subprocess.run([*_as(ATTACKER), "/usr/bin/python3", "-I", "-c", prepare], check=True, timeout=30)
    planted = sorted(os.listdir(lair))
    kubectl = victim.kubectl()
    shim = victim.shim()
    _untouched(victim)
    assert sorted(os.listdir(lair)) == planted  # nothing of the victim's landed there
    assert all(os.lstat(lair / n).st_uid == ATTACKER for n in planted)
    assert kubectl.returncode != 0 and shim.returncode != 0  # no keyring for the victim here: no daemon
    # the victim's shim worked in a private directory of its own instead
    rundir = victim.home / ".cache" / "kubetray" / "run"
    st = os.lstat(rundir)
    assert (st.st_uid, st.st_mode & 0o777) == (victim.uid, 0o700)
    assert os.stat(rundir / "start.log").st_mode & 0o777 == 0o600
    assert SECRET.encode() not in shim.stderr and SECRET.encode() not in kubectl.stderr


def test_a_socket_planted_in_tmp_hears_nothing(victim: Victim, attacker_listener: Listener) -> None:
    """Attack 2 as the issue tells it: nobody's socket at /tmp/kubetray-<uid>/kubetray.sock, at the moment
    of a won stat-then-connect race (its inode shows the victim as owner)."""
    lair = Path(f"/tmp/kubetray-{victim.uid}")
    subprocess.run([*_as(ATTACKER), "/usr/bin/python3", "-I", "-c",
                    f"import os; os.mkdir({str(lair)!r}); os.chmod({str(lair)!r}, 0o777)"], check=True, timeout=30)
    os.rename(attacker_listener.socket, lair / "kubetray.sock")
    os.chown(lair / "kubetray.sock", victim.uid, victim.uid)  # what the victim's stat saw
    kubectl = victim.kubectl()
    assert kubectl.returncode != 0
    assert attacker_listener.heard() == []
    _untouched(victim)


def test_a_foreign_listener_in_the_victims_own_directory_receives_zero_bytes(
    victim: Victim, attacker_listener: Listener
) -> None:
    """Attack 2, the peer check itself: however nobody's socket got into the victim's private directory
    (here root puts it there, owner changed to the victim), the kernel names who answers."""
    rundir = victim.home / "run"
    rundir.mkdir(mode=0o700)
    os.chown(rundir, victim.uid, victim.uid)
    os.rename(attacker_listener.socket, rundir / "kubetray.sock")
    os.chown(rundir / "kubetray.sock", victim.uid, victim.uid)
    env = {"KUBETRAY_RUNTIME_DIR": str(rundir)}
    shim = victim.shim(**env)
    kubectl = victim.kubectl(**env)
    assert shim.returncode == 1
    refusal = shim.stderr.decode().splitlines()
    assert len(refusal) == 1 and "answered by a process of uid 65534" in refusal[0], shim.stderr
    assert kubectl.returncode != 0 and b"answered by a process of uid 65534" in kubectl.stderr
    heard = attacker_listener.heard()
    assert heard and all(line.startswith("connection 0 bytes") for line in heard), heard  # connected, sent nothing
    # the broker's own client refuses the same way
    status = victim.cli("stop", **env)
    assert status.returncode == 2
    assert b"answered by a process of uid 65534" in status.stderr and status.stderr.count(b"\n") == 1
    assert all(line.startswith("connection 0 bytes") for line in attacker_listener.heard())


def test_with_a_long_home_the_socket_still_works(rig: Rig) -> None:
    """A home so deep that <home>/.cache/kubetray/run/kubetray.sock exceeds sockaddr_un's 107 bytes."""
    home = rig.root / ("deep-home-" + "x" * 90)
    home.mkdir(mode=0o700)
    loose = rig.root / "loose-xdg"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)  # an unusable XDG_RUNTIME_DIR: the fallback under HOME is used
    for name in ("KUBETRAY_RUNTIME_DIR", "KUBETRAY_SOCKET"):
        rig.env.pop(name, None)
    rig.env.update(HOME=str(home), XDG_RUNTIME_DIR=str(loose))
    sock = home / ".cache" / "kubetray" / "run" / "kubetray.sock"
    assert len(str(sock).encode()) > 107
    first = rig.kubectl("get", "pods")
    try:
        assert first.returncode == 0, first.stderr.decode()
        assert sock.exists()
        assert rig.status()["socket"] == str(sock)
        assert rig.kubectl("get", "pods").returncode == 0
    finally:
        rig.stop_daemon()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def test_the_daemon_a_shim_starts_runs_isolated_with_a_clean_environment(rig: Rig) -> None:
    marker = rig.root / "pwned"
    dirty = {"LD_PRELOAD": "libm.so.6", "LD_LIBRARY_PATH": str(rig.root), "PYTHONPATH": str(rig.root),
             "PYTHONSTARTUP": str(rig.root / "startup.py"), "AZURE_CLIENT_SECRET": SECRET,
             "OPENAI_API_KEY": UNRELATED, "KUBETRAY_DAEMON_COMMAND": f"/bin/sh -c 'touch {marker}'",
             "HTTPS_PROXY": "http://user:hunter2@127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
    proc = rig.run(shim_command(), *rig.get_token_args(), credential_on_stdout=True, **dirty)
    assert proc.returncode == 0, proc.stderr.decode()
    assert not marker.exists()
    pid = rig.daemon_pid()
    assert pid is not None
    env = _environ(pid)
    for name in ("LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONSTARTUP", "AZURE_CLIENT_SECRET",
                 "OPENAI_API_KEY", "KUBETRAY_DAEMON_COMMAND"):
        assert name not in env, name
    assert SECRET not in "".join(env.values()) and UNRELATED not in "".join(env.values())
    assert env["HOME"] == rig.env["HOME"] and env["DBUS_SESSION_BUS_ADDRESS"] == rig.env["DBUS_SESSION_BUS_ADDRESS"]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1:6] == [b"-I", b"-m", b"broker", b"run", b"--detach"], cmdline
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "libm.so" not in maps or "LD_PRELOAD" not in env  # preloading was the shim's, never the daemon's
    # the one rule for the daemon's own proxy/CA defaults, visible in status (credentials hidden)
    network = rig.status()["network"]
    assert network["variables"]["HTTPS_PROXY"] == "http://***@127.0.0.1:9"
    assert network["variables"]["NO_PROXY"] == "127.0.0.1,localhost"
    assert "environment the daemon started in" in network["source"]
    human = rig.kubetray("status")
    assert b"network: " in human.stdout and b"hunter2" not in human.stdout
    assert sys.executable  # the venv's interpreter started the daemon: cmdline[0] is an absolute path
    assert os.path.isabs(cmdline[0].decode())
