"""The shim as one file for ssh hosts: a zipapp of the standard-library-only ``shim`` package.

Run as ``python3 -IS kubetray-shim.pyz get-token …``: nothing of kubetray needs installing on the remote
side. The archive's entry point sets ``shim.REMOTE`` so the shim never tries to start a daemon there;
it talks to the desktop's daemon through the socket ssh forwards (``KUBETRAY_SOCKET``).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import shim

# The shim's modules; launch.py is left out (it starts a local daemon, which a remote shim never does).
MODULES = ("__init__.py", "main.py", "wire.py", "usage.py", "winpipe.py")
MAIN = b'''"""kubetray's shim for ssh hosts: python3 -IS kubetray-shim.pyz get-token ..."""
import shim

shim.REMOTE = True
from shim.main import main

main()
'''
INTERPRETER = b"#!/usr/bin/env python3\n"
# Fixed timestamps: the same kubetray builds the same bytes (easy to compare across hosts).
_STAMP = (2020, 1, 1, 0, 0, 0)


def archive_bytes() -> bytes:
    """The zipapp's bytes: a shebang, then a zip of shim/*.py and a __main__.py."""
    source = Path(shim.__file__).resolve().parent
    buf = io.BytesIO()
    buf.write(INTERPRETER)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in MODULES:
            info = zipfile.ZipInfo(f"shim/{name}", _STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (source / name).read_bytes())
        info = zipfile.ZipInfo("__main__.py", _STAMP)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, MAIN)
    return buf.getvalue()


def write(path: str) -> str:
    """Write the zipapp to ``path`` (mode 0644, atomically: it runs as ``python3 -IS FILE``); return its path."""
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=".kubetray-shim-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(archive_bytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
