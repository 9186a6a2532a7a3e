"""Child-process hygiene for tests: find and reap what a library started and never waited for.

Python's webbrowser starts a backgrounded browser (``BROWSER="... %s &"``) and drops the handle,
so the child is neither waited for nor killed. Tests that open the browser stand-in reap it here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["child_pids", "reap_children"]

_PROC = Path("/proc")


def child_pids() -> list[int]:
    """Pids whose parent is this process (Linux /proc; empty elsewhere)."""
    me, kids = os.getpid(), []
    for stat in _PROC.glob("[0-9]*/stat"):
        try:
            # The command name is parenthesised and may hold spaces: split after the last ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            kids.append(int(stat.parent.name))
    return kids


def reap_children(timeout: float = 5.0, ignore: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Wait up to ``timeout`` for every child (but those in ``ignore``) to exit, reaping them; return
    the pids still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for pid in child_pids():
            if pid in ignore:
                continue
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    left.append(pid)
            except ChildProcessError:
                continue  # reaped meanwhile by its owner (subprocess)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
