"""Start the daemon when no one answers: once, however many shims ask at the same moment.

Only the slow path imports this. Shims that find no daemon queue on an flock in the runtime
directory; the first starts the daemon and waits until its socket answers, the others then find it
running. The daemon itself also refuses to run twice (see broker/ipc/instance.py).
"""

import _socket
import os
import sys
import time

from shim import main as _main

START_TIMEOUT = 20.0


class LaunchError(Exception):
    """The daemon could not be started; the message is one line for the person."""


def daemon_command() -> "list[str]":
    """How to run the daemon: the interpreter running this shim has kubetray installed beside it."""
    override = os.environ.get("KUBETRAY_DAEMON_COMMAND")
    if override:
        import shlex

        return shlex.split(override)
    import shim

    return [shim.DAEMON_PYTHON or sys.executable, "-m", "broker", "run", "--detach"]


def start_daemon_and_connect(path: str, timeout: float = START_TIMEOUT) -> "_socket.socket":
    """Start the daemon under a lock and return a connected socket, or raise LaunchError."""
    if sys.platform == "win32":  # no fcntl there; the Windows spawn (its own lock, no console) is separate work
        raise LaunchError("the shim cannot start the daemon on Windows yet; run `kubetray run` first")
    import fcntl
    import subprocess

    rundir = os.path.dirname(path)
    try:
        os.makedirs(rundir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(rundir, "start.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LaunchError(
            f"cannot use the broker's directory {rundir} ({exc.strerror}); check its owner and permissions"
        ) from None
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LaunchError("timed out waiting for another kubectl call to start the daemon") from None
                time.sleep(0.01)
        try:
            return _main.connect(path)  # another shim started it while we queued
        except OSError:
            pass
        log_path = os.path.join(rundir, "start.log")
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(
                    daemon_command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    close_fds=True,
                    cwd="/",
                )
            except OSError as exc:
                raise LaunchError(f"could not start the kubetray daemon: {exc.strerror}") from None
        while time.monotonic() < deadline:
            try:
                return _main.connect(path)
            except OSError:
                pass
            if proc.poll() is not None:
                try:
                    return _main.connect(path)
                except OSError:
                    raise LaunchError(f"the kubetray daemon did not start: {_last_line(log_path)}") from None
            time.sleep(0.01)
        raise LaunchError(
            "the kubetray daemon did not answer within %d s; run `kubetray run` to see why" % timeout
        )
    finally:
        os.close(fd)


def _last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else "it exited without saying why; run `kubetray run` to see"
