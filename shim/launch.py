"""Start the daemon when no one answers: once, however many shims ask at the same moment.

Only the slow path imports this. Shims that find no daemon queue on a lock file in the runtime
directory; the first starts the daemon and waits until its socket answers, the others then find it
running. The daemon itself also refuses to run twice (see broker/ipc/instance.py).

Nothing is created or opened before the directory has been checked (a real directory of ours, mode
0700: see shim.wire.check_dir), and every file is opened relative to that checked directory with
O_NOFOLLOW, mode 0600: a link planted by anyone cannot redirect a write.
"""

import _socket
import os
import sys
import time
from collections.abc import Callable

from shim import main as _main
from shim import spawn, wire

START_TIMEOUT = 20.0
POLL = 0.002  # between connection attempts while the daemon starts (each is one cheap syscall)
LOCK_NAME = "start.lock"
LOG_NAME = "start.log"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # Windows has no symlink-following opens to refuse
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class LaunchError(Exception):
    """The daemon could not be started; the message is one line for the person."""


def daemon_command(platform: str = sys.platform) -> "list[str]":
    """How to run the daemon: the interpreter that has kubetray installed, isolated (-I)."""
    import shim

    python = spawn.interpreter(shim.DAEMON_PYTHON or sys.executable, platform, os.path.isfile)
    return spawn.command(python)


def prepare_dir(rundir: str) -> None:
    """Create the runtime directory (0700) if missing, then insist it is ours and private."""
    if sys.platform == "win32":  # under the user's profile, which its ACL keeps private
        try:
            os.makedirs(rundir, exist_ok=True)
        except OSError as exc:
            raise LaunchError(f"cannot create the broker's directory {rundir} ({exc.strerror})") from None
        return
    try:
        problem = wire.check_dir(rundir)
    except FileNotFoundError:
        try:
            parent = os.path.dirname(rundir)
            if parent:
                os.makedirs(parent, mode=0o700, exist_ok=True)
            os.mkdir(rundir, 0o700)
        except FileExistsError:
            pass  # another shim made it a moment ago: checked below like any other
        except OSError as exc:
            raise LaunchError(f"cannot create the broker's directory {rundir} ({exc.strerror}); "
                              f"run `mkdir -p -m 700 {rundir}`") from None
        try:
            problem = wire.check_dir(rundir)
        except FileNotFoundError:
            problem = f"the directory {rundir} vanished while kubetray was creating it; run kubectl again"
    if problem:
        raise LaunchError(f"refusing to use the broker's directory: {problem}")


class _Dir:
    """The checked runtime directory, held open so every file is created inside that very directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        if sys.platform != "win32":
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)
            st = os.fstat(self.fd)
            if st.st_uid != os.getuid() or st.st_mode & 0o077:  # swapped since the check: refuse
                os.close(self.fd)
                raise LaunchError(f"refusing to use the broker's directory {path}: it changed while checked")

    def open(self, name: str, flags: int) -> int:
        """Open ``name`` in this directory: never through a link, never readable by others."""
        flags |= _NOFOLLOW | _CLOEXEC | getattr(os, "O_BINARY", 0)
        if self.fd is None:
            return os.open(os.path.join(self.path, name), flags, 0o600)
        return os.open(name, flags, 0o600, dir_fd=self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _try_lock(fd: int) -> bool:
    """Take the start lock without waiting; the OS drops it when this process ends, however it ends."""
    if sys.platform == "win32":
        # msvcrt.locking on a file in the user's own profile directory: a named mutex would be a name any
        # process in the session could squat, a file lock is scoped by the directory's ACL.
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def start_daemon_and_connect(path: str, timeout: float = START_TIMEOUT) -> "_socket.socket":
    """Start the daemon under a lock and return a connected socket, or raise LaunchError."""
    rundir = wire.runtime_dir() if sys.platform == "win32" else wire.split_socket_path(path)[0]
    prepare_dir(rundir)
    try:
        env = spawn.daemon_env(dict(os.environ), sys.platform)
    except spawn.SpawnRefused as exc:
        raise LaunchError(str(exc)) from None
    try:
        directory = _Dir(rundir)
        try:
            fd = directory.open(LOCK_NAME, os.O_RDWR | os.O_CREAT)
        except BaseException:
            directory.close()
            raise
    except OSError as exc:
        raise LaunchError(f"cannot use the broker's directory {rundir} ({exc.strerror}); "
                          f"remove what is in the way and run kubectl again") from None
    deadline = time.monotonic() + timeout
    try:
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise LaunchError("timed out waiting for another kubectl call to start the daemon")
            time.sleep(0.01)
        try:
            return _main.connect(path)  # another shim started it while we queued
        except PermissionError as exc:
            raise LaunchError(f"refusing to use the broker socket: {exc.strerror or exc}") from None
        except OSError:
            pass
        exited = _spawn(directory, env)
        while time.monotonic() < deadline:
            try:
                return _main.connect(path)
            except PermissionError as exc:
                raise LaunchError(f"refusing to use the broker socket: {exc.strerror or exc}") from None
            except OSError:
                pass
            if exited():
                try:
                    return _main.connect(path)
                except OSError:
                    raise LaunchError(f"the kubetray daemon did not start: {_last_line(directory)}") from None
            time.sleep(POLL)
        raise LaunchError(
            "the kubetray daemon did not answer within %d s; run `kubetray run` to see why" % timeout
        )
    finally:
        os.close(fd)
        directory.close()


def _spawn(directory: _Dir, env: "dict[str, str]") -> "Callable[[], bool]":
    """Start the daemon, its output to the start log; return "has it exited?"."""
    try:
        log = directory.open(LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    except OSError as exc:
        raise LaunchError(f"cannot write {os.path.join(directory.path, LOG_NAME)} ({exc.strerror}); "
                          f"remove it and run kubectl again") from None
    try:
        if sys.platform == "win32":
            import subprocess

            proc = subprocess.Popen(
                daemon_command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, close_fds=True,
                cwd=directory.path, creationflags=spawn.creation_flags(sys.platform),
            )
            return lambda: proc.poll() is not None
        pid = _posix_spawn(daemon_command(), env, log)
    except OSError as exc:
        raise LaunchError(f"could not start the kubetray daemon: {exc.strerror}") from None
    finally:
        os.close(log)

    def exited() -> bool:
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:
            return True

    return exited


def _posix_spawn(argv: "list[str]", env: "dict[str, str]", log: int) -> int:
    """posix_spawn rather than subprocess, whose import alone costs the first call ~15 ms: stdin from
    /dev/null, stdout and stderr to the start log, a new session (out of kubectl's: its Ctrl-C and
    hangup are not ours), and no descriptor this process inherited beyond those three. The daemon
    changes to / itself (posix_spawn cannot)."""
    if sys.platform == "win32":  # Windows starts the daemon with subprocess (creation flags)
        raise OSError("posix_spawn does not exist on Windows")
    actions: list[tuple[object, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log, 1),
        (os.POSIX_SPAWN_DUP2, log, 2),
    ]
    for fd in _inheritable_fds():
        actions.append((os.POSIX_SPAWN_CLOSE, fd))
    try:
        pid: int = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        return pid
    except NotImplementedError:  # no POSIX_SPAWN_SETSID here (older macOS): fork and exec the long way
        import subprocess

        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                close_fds=True, cwd="/", start_new_session=True)
        return proc.pid


def _inheritable_fds() -> "list[int]":
    """Descriptors above 2 a child would inherit (Python's own are never inheritable: PEP 446)."""
    try:
        names = os.listdir("/dev/fd")
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name) if name.isdigit() else -1
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            pass  # the descriptor listdir itself used, closed by now
    return found


def _last_line(directory: _Dir) -> str:
    try:
        fd = directory.open(LOG_NAME, os.O_RDONLY)
    except OSError:
        fd = -1
    lines: list[str] = []
    if fd >= 0:
        with open(fd, "rb") as f:
            text = f.read(64 * 1024).decode("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "it exited without saying why; run `kubetray run` to see"
