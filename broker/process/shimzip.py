"""The shim as one file for ssh hosts: a zipapp of the standard-library-only ``shim`` package.

Run as ``python3 -IS kubetray-shim.pyz get-token …``: nothing of kubetray needs installing on the remote
side. The archive's entry point sets ``shim.REMOTE`` so the shim never tries to start a daemon there;
it talks to the desktop's daemon through the socket ssh forwards (``KUBETRAY_SOCKET``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import marshal
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import shim

# Every module of the shim package but launch.py, which starts a local daemon (a remote shim never
# does); listed from the package itself, so a module added to the shim is in the archive too.
_SHIM_DIR = Path(shim.__file__).resolve().parent
MODULES = tuple(sorted(p.name for p in _SHIM_DIR.glob("*.py") if p.name != "launch.py"))
MAIN = b'''"""kubetray's shim for ssh hosts: python3 -IS kubetray-shim.pyz get-token ..."""
import shim

shim.REMOTE = True
from shim.main import main

main()
'''
INTERPRETER = b"#!/usr/bin/env python3\n"
# What a kubeconfig runs: ``python3 -IS -c BOOTSTRAP <archive> get-token …``. The same shim as
# ``python3 -IS <archive>``, without runpy, which Python imports to run any zipapp and which (with
# importlib.util, contextlib, collections, os) doubles the shim's start-up (docs/protocol.md).
BOOTSTRAP = ("import sys;sys.path[0:0]=sys.argv[1:2];import shim;shim.REMOTE=True;"
             "from shim.main import main;del sys.argv[0];main()")
# Fixed timestamps: the same kubetray builds the same bytes (easy to compare across hosts).
_STAMP = (2020, 1, 1, 0, 0, 0)


def _pyc(source: bytes, name: str) -> bytes:
    """Bytecode for this interpreter, as an unchecked hash-based .pyc (PEP 552): zipimport then uses it
    without comparing timestamps. Another Python version finds the wrong magic number and quietly
    compiles the .py beside it instead."""
    code = compile(source, name, "exec", dont_inherit=True)
    flags = (1).to_bytes(4, "little")  # hash-based, not checked against the source
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)


def archive_bytes() -> bytes:
    """The zipapp's bytes: a shebang, then an uncompressed zip of shim/*.py (+ .pyc) and __main__.py.

    Uncompressed and precompiled because the shim runs on every kubectl call: inflating needs zlib and
    compiling the source costs more than the rest of the shim's start-up (measured in docs/protocol.md).
    """
    source = _SHIM_DIR
    buf = io.BytesIO()
    buf.write(INTERPRETER)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in MODULES:
            data = (source / name).read_bytes()
            zf.writestr(zipfile.ZipInfo(f"shim/{name}", _STAMP), data)
            zf.writestr(zipfile.ZipInfo(f"shim/{name}c", _STAMP), _pyc(data, f"shim/{name}"))
        zf.writestr(zipfile.ZipInfo("__main__.py", _STAMP), MAIN)
    return buf.getvalue()


def built_for() -> str:
    """The Python version whose bytecode the archive carries (others compile the sources)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


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
