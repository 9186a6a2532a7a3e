"""For probes and raw clients of the daemon's socket.

``hold`` holds every import of the named packages until released: what probe scripts use to prove that
something happened before those packages loaded (had it needed one, it would have waited and timed out).
Install it first thing in a fresh interpreter. ``read_line`` reads one reply line from a socket;
``wait_for`` waits, bounded, for a condition another thread or process brings about."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class HoldImports:
    def __init__(self, packages: Iterable[str], timeout: float = 30.0) -> None:
        self.packages = frozenset(packages)
        self.release = threading.Event()
        self._timeout = timeout

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in self.packages:
            self.release.wait(self._timeout)
        return None  # then the normal finders import it


def hold(packages: Iterable[str]) -> threading.Event:
    """Hold ``packages`` from now on; set the returned event to let them load."""
    holder = HoldImports(packages)
    sys.meta_path.insert(0, holder)
    return holder.release


def read_line(sock: Any) -> bytes:
    """Read from a connected socket up to and including the first newline (or to its end)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """``condition()``'s first true value, polled every ``interval``; AssertionError naming ``what`` after
    ``timeout`` seconds (a bound for a slow machine, never a timing that is asserted)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
