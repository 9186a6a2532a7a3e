"""``kubetray run``: the daemon's life as an OS process, from start to stop.

The first kubectl after login, reboot or Quit starts this and waits for it, so the order matters:
  1. log, harden, choose the transport (broker/ipc/transport.py ``select``), make sure we are the only one;
  2. bind the endpoint and answer the callers already waiting whose tokens the keyring holds
     (broker/ipc/early.py): nothing of asyncio, msal, requests, keyring, pystray, PIL or ruamel is
     imported yet (tests/unit/test_daemon_imports.py);
  2b. build the server with its sign-in sources *deferred* and serve everything else;
  3. open the keyring and load the sources in a thread; the first request waits for that, not for more;
  4. only then the tray (pystray and its toolkit), on the main thread as every toolkit requires.
The adapters themselves are built in broker/app.py; this module only orders and runs them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker import __version__
from broker.core.errors import KubetrayError
from broker.ipc import transport as transports
from broker.process.paths import Paths

if TYPE_CHECKING:
    from broker.app import Daemon

log = logging.getLogger(__name__)

# How long the main thread lets the loader have the interpreter to itself before starting the tray: the
# first request is usually waiting for the loader, and a toolkit import would compete with it for the GIL.
LOAD_GRACE = 30.0
# How long a daemon nobody is waiting for yet (started at login) waits for a first caller before it
# loads the rest; a shim that started it connects within milliseconds of the socket appearing.
FIRST_WAIT = 0.5


def run(*, detach: bool = False, foreground_log: bool = False, headless: bool = False) -> int:
    """``kubetray run``: serve until SIGTERM, SIGINT, a shutdown request or Quit. Returns the exit status.

    With a display (and not ``headless``) the tray owns the main thread while serving.
    """
    from broker.process import hardening, logsetup

    if detach and sys.platform != "win32":
        os.chdir("/")  # started by a shim (posix_spawn cannot): hold no directory of kubectl's busy
    paths = Paths.default()
    logsetup.configure(paths.log_dir)
    hardening.harden_process()
    hardening.raise_fd_limit()
    try:
        transport = transports.select()
        transport.prepare(paths.runtime_dir)
    except KubetrayError as exc:
        return _refuse(exc.message)
    from broker.ipc import instance

    try:
        running = instance.probe(paths.socket)  # over the socket or the pipe, the client checks who answers
    except instance.ForeignPeer as exc:
        return _refuse(f"refusing to use the broker socket: {exc}")
    if running:
        print(f"kubetray is already running (pid {running.get('pid')}, {transport.endpoint(paths.socket)})")
        return 0
    lock: instance.InstanceLock | None = None
    if transport.name == "unix":
        # The pipe needs no lock: its first instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, which
        # fails when any process (a daemon starting at the same moment, or a squatter) holds the name.
        lock = instance.InstanceLock(paths.runtime_dir)
        if not lock.try_acquire():
            return _refuse("another kubetray daemon is starting; run `kubetray status` in a moment")
    from broker import app

    try:
        listener = transport.listen(transport.endpoint(paths.socket))  # the shim that started us is connecting
    except OSError as exc:
        if lock is not None:
            lock.release()
        return _refuse(f"cannot listen on {paths.socket}: {exc.strerror or exc}")
    try:
        adopted = app.answer_first(paths, listener, first_wait=FIRST_WAIT) if listener is not None else []
        daemon = app.build_daemon(paths, open_store=app.build_store, lock=lock, transport=transport,
                                  listener=listener, adopted=adopted)
    except KubetrayError as exc:
        if lock is not None:
            lock.release()
        return _refuse(exc.message)
    daemon.start()
    log.info("kubetray %s serving on %s", __version__, transport.endpoint(paths.socket))
    _on_signals(daemon.stopping.set)
    loading = daemon.loading
    if not detach:
        if foreground_log:
            logsetup.log_to_stderr()
        # In the foreground, say "serving" only once the keyring is known to work.
        if loading is not None and loading.wait() and loading.error is not None:
            daemon.stopping.wait()  # the loader's failure sets it once waiting requests have their reply
            daemon.stop()
            return _refuse(loading.error.message)
        print(f"kubetray {__version__} serving on {transport.endpoint(paths.socket)}; Ctrl-C stops it", flush=True)
    if loading is not None:
        loading.wait(LOAD_GRACE)
    if loading is not None and loading.error is not None:
        daemon.stopping.wait()  # set by the loader's failure, after the waiting shims had their reply
        daemon.stop()
        return _refuse(loading.error.message)  # and the start log tells any shim that connects too late
    if detach:  # only now: a refusal above still reaches the start log the starting shim reads
        _detach_stdio()
    log.info("keyring: %s", daemon.info.get("keyring"))
    _serve(daemon, headless=headless)
    log.info("stopping")
    daemon.stop()
    if loading is not None and loading.error is not None:
        return _refuse(loading.error.message)
    return 0


def _serve(daemon: Daemon, *, headless: bool) -> None:
    """Own the main thread until the daemon stops: with the tray when there is one."""
    if headless:
        while not daemon.stopping.wait(1.0):
            pass
        return
    from broker import app

    app.serve_tray(daemon, str(daemon.info.get("keyring", "")))  # returns when daemon.stopping is set


def _on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM, SIGINT (and SIGHUP where it exists: not on Windows) stop the daemon cleanly."""
    names = ("SIGTERM", "SIGINT") if sys.platform == "win32" else ("SIGTERM", "SIGINT", "SIGHUP")
    for name in names:
        signal.signal(getattr(signal, name), lambda *_: stop())


def _refuse(message: str) -> int:
    log.error("not starting: %s", message)
    print(f"kubetray: {message}", file=sys.stderr, flush=True)
    return 2


def _detach_stdio() -> None:
    """Started by a shim: stop writing to the start log it reads, and never hold kubectl's pipes."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
