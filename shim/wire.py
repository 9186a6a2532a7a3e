"""The wire format and socket location shared by the shim and the daemon.

Standard library only, and only ``os``: the shim imports this on every kubectl call, so each import
here costs every user milliseconds. The daemon imports it too, so both sides agree by construction.
See docs/protocol.md for the protocol these constants describe.
"""

import os
import sys

PROTOCOL_VERSION = 1

# Longest request line the daemon reads; a longer one is refused, never buffered.
MAX_REQUEST_BYTES = 64 * 1024

# Replies are JSON lines. The daemon writes a credential reply with exactly this prefix so the shim can
# hand the ExecCredential to kubectl by slicing, without importing json (see docs/protocol.md).
CREDENTIAL_PREFIX = b'{"v":1,"type":"credential","body":'

SOCKET_NAME = "kubetray.sock"
APP_NAME = "kubetray"


def runtime_dir() -> str:
    """The per-user directory holding the socket: platformdirs' user runtime dir for "kubetray".

    Re-implemented here because the shim may not import platformdirs (start-up cost); a unit test
    checks the two agree. When the XDG runtime base does not exist (no systemd-logind, e.g. in a
    container), fall back to a private directory under /tmp; the daemon checks owner and mode anyway.
    """
    override = os.environ.get("KUBETRAY_RUNTIME_DIR")
    if override:
        return override
    if os.name == "nt":
        local = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(local, APP_NAME, APP_NAME, "Temp")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/TemporaryItems/" + APP_NAME)
    base = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if not base:
        if sys.platform.startswith(("freebsd", "openbsd", "netbsd")):
            base = "/var/run/user/%d" % os.getuid()
        else:
            base = "/run/user/%d" % os.getuid()
    if not os.path.isdir(base):
        return "/tmp/%s-%d" % (APP_NAME, os.getuid())  # noqa: S108 - checked 0700 and owner by the daemon
    return os.path.join(base, APP_NAME)


def socket_path() -> str:
    """Where the daemon listens. KUBETRAY_SOCKET overrides (tests, unusual setups)."""
    return os.environ.get("KUBETRAY_SOCKET") or os.path.join(runtime_dir(), SOCKET_NAME)
