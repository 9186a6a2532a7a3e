"""The fast shim launcher: a script kubeconfigs can name by absolute path, started as ``python -IS``.

pip's console-script launcher for ``kubetray-shim`` works, but it imports site and ``re`` on every
kubectl call. This launcher runs the same shim with ``-IS`` (no site, no user environment), which is
what makes the shim start close to the bare interpreter. ``-IS`` must be one shebang argument: a
shebang passes everything after the interpreter as a single argument.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import py_compile
import sys
import tempfile

import platformdirs

import shim
from shim import wire

_TEMPLATE = """#!{python} -IS
# kubetray-shim fast launcher, written by `kubetray shim-path`; rewritten when kubetray moves.
# It runs on the base interpreter (a venv's starts slower); the daemon runs on the venv's.
import sys
sys.path.insert(0, {root!r})
import shim
shim.DAEMON_PYTHON = {daemon_python!r}
from shim.main import main
main()
"""


def launcher_path() -> str:
    return os.path.join(platformdirs.user_data_dir(wire.APP_NAME), "bin", "kubetray-shim")


def render(python: str | None = None) -> str:
    """The launcher's text. The shim needs only the standard library, so it can run on the interpreter
    the venv was made from, which starts faster than the venv's own (no pyvenv.cfg search)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(shim.__file__)))
    base = getattr(sys, "_base_executable", "") or sys.executable
    interpreter = python or (base if os.path.exists(base) else sys.executable)
    return _TEMPLATE.format(python=interpreter, root=root, daemon_python=sys.executable)


def compile_shim() -> None:
    """Write the shim's bytecode now, so no kubectl call pays for compiling it.

    Python never writes bytecode where PYTHONDONTWRITEBYTECODE is set or the directory is read-only,
    and a wheel install may have skipped it; compiling explicitly here makes the fast path not depend
    on either. Failures only cost speed, so they are ignored.
    """
    package = os.path.dirname(os.path.abspath(shim.__file__))
    for name in ("__init__.py", "main.py", "wire.py"):
        source = os.path.join(package, name)
        with contextlib.suppress(OSError, py_compile.PyCompileError):
            py_compile.compile(source, cfile=importlib.util.cache_from_source(source), doraise=True)


def ensure_launcher(path: str | None = None) -> str:
    """Write the launcher if it is missing or stale, compile the shim; return the launcher's path."""
    path = path or launcher_path()
    compile_shim()
    content = render()
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == content:
                return path
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".kubetray-shim-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(content)
    os.chmod(tmp, 0o755)  # noqa: S103 - a program others may run; it holds no secret
    os.replace(tmp, path)
    return path
