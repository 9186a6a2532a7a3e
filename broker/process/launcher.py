"""The fast shim launcher: what kubeconfigs name, started as ``python -I -S`` on every OS.

pip's console-script launcher for ``kubetray-shim`` works, but it imports site (and ``re``) on every
kubectl call: about twice the bare interpreter's start. This launcher runs the same shim with ``-I -S``
(no site, no user environment), which is what makes the shim start close to the bare interpreter.

- Linux, macOS: the launcher is a script with a ``#!<python> -IS`` shebang (``-IS`` must be one argument:
  a shebang passes everything after the interpreter as a single one), named as the kubeconfig's
  ``command:``. ``ensure_launcher`` also rewrites this install's own console script ``<venv>/bin/kubetray-shim``
  to the same text when it is still pip's, so whatever a PATH lookup finds (pipx links that file into
  ~/.local/bin) starts as fast; scripts/install links ~/.local/bin/kubetray-shim to the launcher itself.
- Windows cannot run a script by itself, and kubectl runs ``command:`` with CreateProcess: the kubeconfig
  names the interpreter, ``python.exe`` by absolute path, with ``-I -S <launcher>`` before the shim's own
  arguments (``kubeconfig_command``). A ``.cmd`` wrapper would go through cmd.exe (slower, and its argument
  quoting is a known injection hazard); pip's ``kubetray-shim.exe`` imports site like any console script.
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


def launcher_path(platform: str | None = None) -> str:
    """Where the launcher lives: the per-user data dir (under %LOCALAPPDATA% on Windows)."""
    name = "kubetray-shim.py" if (platform or sys.platform) == "win32" else "kubetray-shim"
    return os.path.join(platformdirs.user_data_dir(wire.APP_NAME, appauthor=False), "bin", name)


def kubeconfig_command(launcher: str, *, platform: str | None = None, python: str | None = None) -> list[str]:
    """A kubeconfig exec entry's ``command`` followed by the arguments that come before ``get-token``.

    POSIX: ``[launcher]`` (its shebang carries ``-IS``). Windows: ``[python.exe, "-I", "-S", launcher]``.
    """
    if (platform or sys.platform) != "win32":
        return [launcher]
    return [python or base_interpreter(), "-I", "-S", launcher]


def base_interpreter() -> str:
    """The interpreter the venv was made from (it starts faster than the venv's: no pyvenv.cfg search)."""
    base = getattr(sys, "_base_executable", "") or sys.executable
    return base if os.path.exists(base) else sys.executable


def render(python: str | None = None) -> str:
    """The launcher's text. The shim needs only the standard library, so it can run on the interpreter
    the venv was made from, which starts faster than the venv's own (no pyvenv.cfg search)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(shim.__file__)))
    return _TEMPLATE.format(python=python or base_interpreter(), root=root, daemon_python=sys.executable)


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


def ensure_launcher(path: str | None = None, *, console_script: str | None = None) -> str:
    """Write the launcher if it is missing or stale, compile the shim, speed up this install's console
    script (``console_script``, default ``<venv>/bin/kubetray-shim``); return the launcher's path."""
    path = path or launcher_path()
    compile_shim()
    content = render()
    _write_if_changed(path, content)
    if sys.platform != "win32":
        script = console_script or os.path.join(os.path.dirname(sys.executable), "kubetray-shim")
        with contextlib.suppress(OSError):  # a read-only (system) install keeps pip's script: slower, works
            if is_pip_console_script(script):
                _write_if_changed(script, content, make_dirs=False)
    return path


def is_pip_console_script(path: str) -> bool:
    """True for pip's (or an earlier launcher's) ``kubetray-shim`` script: a regular file, not a link,
    that runs shim.main. Anything else at that path is left alone."""
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(4096)
    return head.startswith("#!") and ("from shim.main import main" in head)


def _write_if_changed(path: str, content: str, *, make_dirs: bool = True) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == content:
                return
    except OSError:
        pass
    if make_dirs:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".kubetray-shim-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(tmp, 0o755)  # noqa: S103 - a program others may run; it holds no secret
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
