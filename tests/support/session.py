"""An isolated desktop session for tests: private home and XDG directories, a private D-Bus session bus
and a gnome-keyring Secret Service with an unlocked login keyring.

Nothing here reaches the user's home or session bus. The bus is started from a config of our own that
names no service directories, so it activates nothing: every process on it is one this module started
and owns by PID. (Without activation, a prompt gnome-keyring would show fails at once instead of hanging,
which is what makes a locked keyring testable headless.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from jeepney import DBus, DBusAddress, Message, Properties, new_method_call
from jeepney.io.blocking import DBusConnection, open_dbus_connection
from jeepney.wrappers import DBusErrorResponse, unwrap_msg

SECRETS = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
# gnome-keyring takes its stdin verbatim as the new login keyring's password, newline included.
LOGIN_PASSWORD = b"\n"

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
_XDG_DIRS = {
    "HOME": "home",
    "XDG_CONFIG_HOME": "config",
    "XDG_DATA_HOME": "data",
    "XDG_STATE_HOME": "state",
    "XDG_CACHE_HOME": "cache",
    "XDG_RUNTIME_DIR": "run",
}
# Variables that would lead a process out of the session, to a display or to another keyring.
_DROPPED = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "PYTHON_KEYRING_BACKEND")


def keyring_available() -> bool:
    """True when the binaries an IsolatedSession runs are on PATH."""
    return all(shutil.which(name) for name in ("dbus-daemon", "gnome-keyring-daemon"))


class IsolatedSession:
    """A private desktop session; use as a context manager or call start() and close().

    ``env`` is a copy of os.environ pointing at the session (HOME, XDG_*, DBUS_SESSION_BUS_ADDRESS) with
    DISPLAY and WAYLAND_DISPLAY removed; ``root`` is the temporary directory holding everything.
    """

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._root: Path | None = None
        self._env: dict[str, str] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._keyring: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        """The temporary directory holding the session's home, XDG directories, bus socket and logs."""
        if self._root is None:
            raise RuntimeError("the session has not been started")
        return self._root

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process inside the session (a copy: change it freely)."""
        if self._root is None:
            raise RuntimeError("the session has not been started")
        return dict(self._env)

    @property
    def bus_address(self) -> str:
        """The private session bus, e.g. ``unix:path=/tmp/kubetray-session-…/bus,guid=…``."""
        return self.env["DBUS_SESSION_BUS_ADDRESS"]

    @property
    def pids(self) -> list[int]:
        """PIDs of the processes this session started (dbus-daemon, gnome-keyring-daemon)."""
        return [process.pid for process in self._processes]

    def __enter__(self) -> IsolatedSession:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> IsolatedSession:
        """Create the directories, start the bus and gnome-keyring, and wait until the keyring answers."""
        if self._root is not None:
            raise RuntimeError("the session is already started")
        self._root = Path(tempfile.mkdtemp(prefix="kubetray-session-"))
        try:
            self._env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
            for variable, directory in _XDG_DIRS.items():
                path = self._root / directory
                path.mkdir(mode=0o700)
                path.chmod(0o700)  # XDG_RUNTIME_DIR must be 0700 whatever the umask
                self._env[variable] = str(path)
            self._env["DBUS_SESSION_BUS_ADDRESS"] = self._start_bus()
            self._start_keyring()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop exactly the processes this session started and remove its directory. Idempotent."""
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def lock_keyring(self) -> None:
        """Lock the login keyring, as a screen lock or a timeout would."""
        with open_dbus_connection(bus=self.bus_address) as bus:
            collection = self._login_collection(bus)
            _call(
                bus, DBusAddress(SERVICE_PATH, SECRETS, "org.freedesktop.Secret.Service"), "Lock", "ao", ([collection],)
            )

    def unlock_keyring(self) -> None:
        """Unlock the login keyring with its password, without a prompt (gnome-keyring's test interface)."""
        with open_dbus_connection(bus=self.bus_address) as bus:
            collection = self._login_collection(bus)
            service = DBusAddress(SERVICE_PATH, SECRETS, "org.freedesktop.Secret.Service")
            _output, session = _call(bus, service, "OpenSession", "sv", ("plain", ("s", "")))
            internal = DBusAddress(SERVICE_PATH, SECRETS, "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface")
            secret = (session, b"", LOGIN_PASSWORD, "text/plain")
            _call(bus, internal, "UnlockWithMasterPassword", "o(oayays)", (collection, secret))

    def keyring_locked(self) -> bool:
        """Whether the login keyring is locked right now."""
        with open_dbus_connection(bus=self.bus_address) as bus:
            collection = DBusAddress(self._login_collection(bus), SECRETS, "org.freedesktop.Secret.Collection")
            (_signature, locked), *_ = unwrap_msg(bus.send_and_get_reply(Properties(collection).get("Locked")))
            return bool(locked)

    def _start_bus(self) -> str:
        config = self.root / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=self.root / "bus"))
        command = ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address"]
        bus = self._spawn(command, stdout=subprocess.PIPE, log="dbus-daemon.log")
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        bus.stdout.close()
        if not address:
            raise RuntimeError(f"dbus-daemon did not start: {self._log_tail('dbus-daemon.log')}")
        return address

    def _start_keyring(self) -> None:
        # --foreground keeps the daemon our child, so close() knows its PID; the newline on stdin makes
        # --unlock create an unlocked login keyring (an empty stdin creates none).
        command = ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"]
        daemon = self._keyring = self._spawn(command, stdin=subprocess.PIPE, log="gnome-keyring.log")
        assert daemon.stdin is not None
        daemon.stdin.write(LOGIN_PASSWORD)
        daemon.stdin.close()
        deadline = time.monotonic() + self._timeout
        with open_dbus_connection(bus=self._env["DBUS_SESSION_BUS_ADDRESS"]) as bus:
            while not self._keyring_ready(bus):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gnome-keyring did not come up: {self._log_tail('gnome-keyring.log')}")
                time.sleep(0.01)

    def ensure_keyring(self) -> str:
        """Start gnome-keyring again if it is gone; "" when it was serving, else what had become of it.

        gnome-keyring has been seen to vanish in the middle of a long run on a loaded machine, after
        which every later test of the run failed with "no keyring". The login keyring's file is still in
        this session's HOME, so a new daemon unlocks the same keyring with the same password.
        """
        daemon = self._keyring
        if daemon is not None and daemon.poll() is None:
            try:
                with open_dbus_connection(bus=self.bus_address) as bus:
                    if self._keyring_ready(bus):
                        return ""
            except DBusErrorResponse:  # e.g. NoReply: it went away in the middle of the question
                pass
        status = daemon.poll() if daemon is not None else None
        what = f"gnome-keyring had stopped (exit status {status}); its log ends: {self._log_tail('gnome-keyring.log')}"
        if daemon is not None:
            if daemon.poll() is None:
                daemon.terminate()
                daemon.wait(timeout=5)
            self._processes.remove(daemon)
        self._start_keyring()
        return what

    def _keyring_ready(self, bus: DBusConnection) -> bool:
        """The Secret Service owns its name and has an unlocked default collection."""
        (owned,) = unwrap_msg(bus.send_and_get_reply(DBus().NameHasOwner(SECRETS)))
        if not owned:
            return False
        service = DBusAddress(SERVICE_PATH, SECRETS, "org.freedesktop.Secret.Service")
        (path,) = _call(bus, service, "ReadAlias", "s", ("default",))
        return bool(path != "/")

    def _login_collection(self, bus: DBusConnection) -> str:
        service = DBusAddress(SERVICE_PATH, SECRETS, "org.freedesktop.Secret.Service")
        (path,) = _call(bus, service, "ReadAlias", "s", ("default",))
        return str(path)

    def _spawn(
        self, command: list[str], *, log: str, stdin: int | None = None, stdout: int | None = None
    ) -> subprocess.Popen[bytes]:
        # setpriv --pdeathsig: if the test process dies without close(), the daemons die with it instead
        # of lingering. It execs the command, so the PID we record is the daemon's own.
        prefix = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
        with open(self.root / log, "ab") as log_file:
            process = subprocess.Popen(
                prefix + command,
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=log_file if stdout is None else stdout,
                stderr=log_file,
                env=self._env,
                cwd=self.root,
            )
        self._processes.append(process)
        return process

    def _log_tail(self, log: str) -> str:
        text = (self.root / log).read_text(errors="replace").strip()
        return text[-2000:] or "(no output)"


def _call(
    bus: DBusConnection, address: DBusAddress, method: str, signature: str, body: tuple[object, ...]
) -> tuple[object, ...]:
    """Call a D-Bus method and return the reply's body; a D-Bus error raises DBusErrorResponse."""
    reply: Message = bus.send_and_get_reply(new_method_call(address, method, signature, body))
    return tuple(unwrap_msg(reply))
