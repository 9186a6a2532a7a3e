"""The wire format and socket location shared by the shim and the daemon.

Standard library only, and not even ``os``: the shim imports this on every kubectl call, and under
``python -IS`` importing ``os`` costs about 1.5 ms (it pulls in collections.abc), a tenth of the
interpreter's whole start-up. The builtin module ``os`` wraps (``posix``, or ``nt`` on Windows) has
everything the fast path needs. The daemon imports this module too, so both sides agree by
construction. See docs/protocol.md for the protocol these constants describe.
"""

import sys

if sys.platform == "win32":
    import nt as _os
else:
    import posix as _os

builtin_os = _os  # for shim.main: what ``os`` wraps, without the cost of importing ``os``

PROTOCOL_VERSION = 1

# Longest request line the daemon reads; a longer one is refused, never buffered.
MAX_REQUEST_BYTES = 64 * 1024

# Replies are JSON lines. The daemon writes a credential reply with exactly this prefix so the shim can
# hand the ExecCredential to kubectl by slicing, without importing json (see docs/protocol.md).
CREDENTIAL_PREFIX = b'{"v":1,"type":"credential","body":'

# Environment variables the shim forwards (by prefix; a full name is its own prefix): what Azure
# kubelogin reads to interpret its arguments, including the Azure Pipelines and Terraform (ARM_) names.
FORWARDED_ENV_PREFIXES = ("AAD_", "AZURE_", "KUBELOGIN_", "AZURESUBSCRIPTION_", "ARM_", "SYSTEM_ACCESSTOKEN",
                          "SYSTEM_OIDCREQUESTURI")

SOCKET_NAME = "kubetray.sock"
APP_NAME = "kubetray"


def getenv(name: str, default: str = "") -> str:
    """An environment variable, as ``os.environ`` would give it (live, when ``os`` is loaded)."""
    os_module = sys.modules.get("os")
    if os_module is not None:  # the daemon, tests: os.environ sees later changes, posix.environ does not
        return str(os_module.environ.get(name, default))
    if sys.platform == "win32":
        return str(_os.environ.get(name, default))
    value = _os.environ.get(name.encode("utf-8", "surrogateescape"))  # posix.environ is bytes to bytes
    return default if value is None else value.decode("utf-8", "surrogateescape")


def environ() -> "dict[str, str]":
    """A copy of the environment as text, without importing ``os``."""
    os_module = sys.modules.get("os")
    if os_module is not None:
        return dict(os_module.environ)
    return {
        (k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k):
        (v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v)
        for k, v in _os.environ.items()
    }


def _is_dir(path: str) -> bool:
    try:
        return (_os.stat(path).st_mode & 0o170000) == 0o040000
    except OSError:
        return False


def _home() -> str:
    return getenv("HOME") or getenv("USERPROFILE")


def runtime_dir() -> str:
    """The per-user directory holding the socket: platformdirs' user runtime dir for "kubetray".

    Re-implemented here because the shim may not import platformdirs (start-up cost); a unit test
    checks the two agree. When the XDG runtime base does not exist (no systemd-logind, e.g. in a
    container), fall back to a private directory under /tmp; the daemon checks owner and mode anyway.
    """
    override = getenv("KUBETRAY_RUNTIME_DIR")
    if override:
        return override
    if sys.platform == "win32":
        local = getenv("LOCALAPPDATA") or _home() + "\\AppData\\Local"
        return local + "\\" + APP_NAME + "\\" + APP_NAME + "\\Temp"
    if sys.platform == "darwin":
        return _home() + "/Library/Caches/TemporaryItems/" + APP_NAME
    base = getenv("XDG_RUNTIME_DIR").strip()
    if not base:
        if sys.platform.startswith(("freebsd", "openbsd", "netbsd")):
            base = "/var/run/user/%d" % _os.getuid()
        else:
            base = "/run/user/%d" % _os.getuid()
    if not _is_dir(base):
        return "/tmp/%s-%d" % (APP_NAME, _os.getuid())  # noqa: S108 - checked 0700 and owner by the daemon
    return base.rstrip("/") + "/" + APP_NAME


def socket_path() -> str:
    """Where the daemon listens. KUBETRAY_SOCKET overrides (tests, unusual setups)."""
    sep = "\\" if sys.platform == "win32" else "/"
    return getenv("KUBETRAY_SOCKET") or runtime_dir() + sep + SOCKET_NAME
