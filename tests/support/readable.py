"""What another uid must read, copied where it can: tests that act as a second user cannot enter a
checkout inside a 0700 home (nor its .venv), so they run Debian's interpreter on a world-readable copy
of the standard-library-only parts they need (shim/, broker/ for hardening)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def other_user_python() -> str:
    """An interpreter another uid can run: the venv's base (Debian's python3), never a path in the checkout."""
    base = getattr(sys, "_base_executable", "") or sys.executable
    return base if not base.startswith(str(ROOT)) else "/usr/bin/python3"


def readable_copy(packages: tuple[str, ...] = ("broker", "shim")) -> Path:
    """Copy ``packages`` (sources only) to a fresh directory every uid can read; the caller removes it."""
    root = Path(tempfile.mkdtemp(prefix="kubetray-readable-"))
    for package in packages:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for directory, _dirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return root
