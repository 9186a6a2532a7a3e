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


def readable_copy(packages: tuple[str, ...] = ("broker", "shim"), libraries: tuple[str, ...] = ()) -> Path:
    """Copy ``packages`` (sources only) and the pure-Python ``libraries`` (e.g. "ruamel.yaml", which the
    CLI imports) to a fresh directory every uid can read; the caller removes it."""
    import importlib.util

    root = Path(tempfile.mkdtemp(prefix="kubetray-readable-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in packages:
        shutil.copytree(ROOT / package, root / package, ignore=ignore)
    for library in libraries:
        spec = importlib.util.find_spec(library)
        assert spec is not None and spec.origin, f"{library} is not installed"
        shutil.copytree(Path(spec.origin).parent, root.joinpath(*library.split(".")), ignore=ignore)
    for directory, _dirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return root


def reachable_by_others(path: str) -> bool:
    """Whether any uid can run ``path``: every directory above it searchable, the file itself executable."""
    given, target = Path(path).absolute(), Path(path).resolve()
    directories = {*given.parents, *target.parents}
    return all(os.stat(d).st_mode & 0o001 for d in directories) and bool(os.stat(target).st_mode & 0o001)


def shim_launcher(root: Path, daemon_python: str) -> str:
    """An executable shim in ``root`` (a readable copy) for another uid: the interpreter that uid can run,
    with -IS, as the fast launcher is; the daemon it starts runs on ``daemon_python``."""
    launcher = root / "kubetray-shim"
    launcher.write_text(f"#!{other_user_python()} -IS\n"
                        f"import sys\nsys.path.insert(0, {str(root)!r})\n"
                        f"import shim\nshim.DAEMON_PYTHON = {daemon_python!r}\n"
                        "from shim.main import main\nmain()\n")
    launcher.chmod(0o755)
    return str(launcher)
