"""The fast shim launcher: a script kubeconfigs can name by absolute path, started as ``python -IS``.

pip's console-script launcher for ``kubetray-shim`` works, but it imports site and ``re`` on every
kubectl call. This launcher runs the same shim with ``-IS`` (no site, no user environment), which is
what makes the shim start close to the bare interpreter. ``-IS`` must be one shebang argument: a
shebang passes everything after the interpreter as a single argument.
"""

from __future__ import annotations

import os
import sys
import tempfile

import platformdirs

import shim
from shim import wire

_TEMPLATE = """#!{python} -IS
# kubetray-shim fast launcher, written by `kubetray shim-path`; rewritten when kubetray moves.
import sys
sys.path.insert(0, {root!r})
from shim.main import main
main()
"""


def launcher_path() -> str:
    return os.path.join(platformdirs.user_data_dir(wire.APP_NAME), "bin", "kubetray-shim")


def render(python: str | None = None) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(shim.__file__)))
    return _TEMPLATE.format(python=python or sys.executable, root=root)


def ensure_launcher(path: str | None = None) -> str:
    """Write the launcher if it is missing or stale; return its absolute path."""
    path = path or launcher_path()
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
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path
