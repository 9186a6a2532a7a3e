"""The wire format and socket location shared by the shim and the daemon.

Standard library only, and not even ``os``: the shim imports this on every kubectl call, and under
``python -IS`` importing ``os`` costs about 1.5 ms (it pulls in collections.abc), a tenth of the
interpreter's whole start-up. The builtin module ``os`` wraps (``posix``, or ``nt`` on Windows) has
everything the fast path needs. The daemon imports this module too, so both sides agree by
construction. See docs/protocol.md for the protocol these constants describe.
"""

import _socket
import sys

if sys.platform == "win32":
    import nt as _os
else:
    import posix as _os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable

builtin_os = _os  # for shim.main: what ``os`` wraps, without the cost of importing ``os``

PROTOCOL_VERSION = 1

# Longest request line the daemon reads; a longer one is refused, never buffered.
MAX_REQUEST_BYTES = 64 * 1024
# Longest reply line the shim reads (an ExecCredential is a few KB); a longer one ends the call.
MAX_REPLY_BYTES = 1024 * 1024

# Replies are JSON lines. The daemon writes a credential reply with exactly this prefix so the shim can
# hand the ExecCredential to kubectl by slicing, without importing json (see docs/protocol.md).
CREDENTIAL_PREFIX = b'{"v":1,"type":"credential","body":'

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


def _home() -> str:
    return getenv("HOME") or getenv("USERPROFILE")


def _uid() -> int:
    return _os.getuid() if hasattr(_os, "getuid") else -1


def _private(path: str) -> bool:
    """A real directory (not a link), owned by us, closed to group and others."""
    try:
        st = _os.lstat(path)
    except (OSError, ValueError):
        return False
    return (st.st_mode & 0o170000) == 0o040000 and st.st_uid == _uid() and not st.st_mode & 0o077


# Under the home directory, for when the session has no private runtime directory. Never a predictable
# name in a shared directory such as /tmp: another user could create it first (see docs/security.md).
HOME_FALLBACK = "/.cache/" + APP_NAME + "/run"


def runtime_dir(platform: str = sys.platform) -> str:
    """The per-user directory holding the socket, the start lock and the start log.

    With a usable XDG runtime directory (``$XDG_RUNTIME_DIR``, else ``/run/user/<uid>``: a real
    directory of ours with mode 0700) this is platformdirs' user runtime dir for "kubetray"; a unit
    test checks the two agree (the shim may not import platformdirs: start-up cost). Otherwise (no
    systemd-logind: SSH without pam_systemd, containers, WSL) it is ``~/.cache/kubetray/run``.
    ``KUBETRAY_RUNTIME_DIR`` overrides; whatever is chosen gets the same checks (see check_dir).
    """
    override = getenv("KUBETRAY_RUNTIME_DIR")
    if override:
        return override
    if platform == "win32":
        local = getenv("LOCALAPPDATA") or _home() + "\\AppData\\Local"
        return local + "\\" + APP_NAME + "\\" + APP_NAME + "\\Temp"
    if platform == "darwin":
        return _home() + "/Library/Caches/TemporaryItems/" + APP_NAME
    base = getenv("XDG_RUNTIME_DIR").strip()
    if not base:
        if platform.startswith(("freebsd", "openbsd", "netbsd")):
            base = "/var/run/user/%d" % _uid()
        else:
            base = "/run/user/%d" % _uid()
    if base.startswith("/") and _private(base):
        return base.rstrip("/") + "/" + APP_NAME
    return _home().rstrip("/") + HOME_FALLBACK


def socket_path(platform: str = sys.platform) -> str:
    """Where the daemon listens. KUBETRAY_SOCKET overrides (tests, unusual setups)."""
    sep = "\\" if platform == "win32" else "/"
    return getenv("KUBETRAY_SOCKET") or runtime_dir(platform) + sep + SOCKET_NAME


def check_dir(path: str) -> "str | None":
    """Why ``path`` must not hold our socket or files (one line with the fix), or None if it may.

    It must be a real directory (lstat: a symlink is refused, whoever made it), owned by us, with
    no access for group or others: then no other user can have put anything in it or swap it.
    Windows keeps its per-user profile ACLs and checks the pipe's server instead. A missing
    directory raises FileNotFoundError.
    """
    if sys.platform == "win32":
        return None
    try:
        st = _os.lstat(path)
    except FileNotFoundError:
        raise  # nothing there yet: the caller may create it (0700), then checks again
    except (OSError, ValueError) as exc:
        return "cannot check the directory %s (%s); check its parents' permissions" % (path, _strerror(exc))
    kind = st.st_mode & 0o170000
    if kind == 0o120000:
        return "%s is a symbolic link, not a directory of yours; run `rm %s && mkdir -m 700 %s`" % (
            path, path, path)
    if kind != 0o040000:
        return "%s is not a directory; remove it (`rm %s`) and run kubectl again" % (path, path)
    if st.st_uid != _uid():
        return ("the directory %s belongs to uid %d, not to you (uid %d): another user may have made it; "
                "unset KUBETRAY_RUNTIME_DIR / KUBETRAY_SOCKET or have it removed" % (path, st.st_uid, _uid()))
    if st.st_mode & 0o077:
        return "the directory %s has mode %04o, open to other users; run `chmod 700 %s`" % (
            path, st.st_mode & 0o7777, path)
    return None


def _strerror(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def split_socket_path(path: str) -> "tuple[str, str]":
    """``(directory, name)`` of a socket path (the directory is what check_dir looks at)."""
    sep = "\\" if sys.platform == "win32" else "/"
    head, _, name = path.rpartition(sep)
    if not head:
        head = sep if path.startswith(sep) else "."
    return head, name


# -- reaching a socket whose path is too long for sockaddr_un -------------------------------------------
# sun_path holds 108 bytes on Linux and 104 on macOS/BSD, including the terminating NUL. A socket under a
# deep home directory would not fit: connect (and bind) through a descriptor of its directory instead.
MAX_SUN_PATH = 107 if sys.platform.startswith("linux") else 103


def unix_call(call: "Callable[[str], None]", path: str, platform: str = sys.platform) -> None:
    """``call(address)`` (a socket's connect or bind) for ``path``, however long the path is.

    Linux: a long path is reached as ``/proc/self/fd/<dir fd>/<name>``, which the kernel resolves
    through the open directory. Elsewhere the process's working directory moves to that directory for
    the call (the shim is single-threaded; the daemon binds before it serves) and back.
    """
    if sys.platform == "win32" or len(path.encode("utf-8", "surrogateescape")) <= MAX_SUN_PATH:
        call(path)
        return
    directory, name = split_socket_path(path)
    flags = _os.O_RDONLY | getattr(_os, "O_DIRECTORY", 0) | getattr(_os, "O_CLOEXEC", 0)
    fd = _os.open(directory, flags)
    try:
        if platform.startswith("linux"):
            call("/proc/self/fd/%d/%s" % (fd, name))
            return
        here = _os.open(".", flags)
        try:
            _os.fchdir(fd)
            try:
                call(name)
            finally:
                _os.fchdir(here)
        finally:
            _os.close(here)
    finally:
        _os.close(fd)


# -- who answered: the kernel's word on the peer of a connected Unix socket ----------------------------
# Parsed with int.from_bytes, not struct: the shim pays for every import on every kubectl call.
# struct ucred (Linux SO_PEERCRED) { pid_t pid; uid_t uid; gid_t gid; }
UCRED_SIZE = 12
# struct xucred (macOS/BSD LOCAL_PEERCRED, what getpeereid() reads) { u_int cr_version; uid_t cr_uid;
# short cr_ngroups; (2 bytes padding) gid_t cr_groups[16]; }; FreeBSD may append a pid we never ask for.
XU_NGROUPS = 16
XUCRED_SIZE = 12 + 4 * XU_NGROUPS
XUCRED_VERSION = 0
SOL_LOCAL = 0
LOCAL_PEERCRED = 0x001
# Linux defines SO_PEERCRED per architecture (17 on x86 and arm, 21 on powerpc, 18 on mips).
SO_PEERCRED = getattr(_socket, "SO_PEERCRED", 17)


def parse_ucred(data: bytes) -> int:
    """The uid in a Linux ``struct ucred`` (uid_t is unsigned: a uid above 2**31 stays positive)."""
    if len(data) < UCRED_SIZE:
        raise ValueError("struct ucred is %d bytes; got %d" % (UCRED_SIZE, len(data)))
    return int.from_bytes(data[4:8], sys.byteorder)


def parse_xucred(data: bytes) -> int:
    """The uid in a BSD/macOS ``struct xucred``, after checking its size, version and group count."""
    # An answer shorter than the struct, of another version, or with an impossible group count means we
    # are not reading what we think: refuse, never guess.
    if len(data) < XUCRED_SIZE:
        raise ValueError("struct xucred is %d bytes; got %d" % (XUCRED_SIZE, len(data)))
    version = int.from_bytes(data[0:4], sys.byteorder)
    if version != XUCRED_VERSION:
        raise ValueError("struct xucred version %d, expected %d" % (version, XUCRED_VERSION))
    ngroups = int.from_bytes(data[8:10], sys.byteorder, signed=True)
    if not 0 <= ngroups <= XU_NGROUPS:
        raise ValueError("struct xucred claims %d groups (at most %d)" % (ngroups, XU_NGROUPS))
    return int.from_bytes(data[4:8], sys.byteorder)


def peer_method(platform: str = sys.platform) -> "str | None":
    """Which kernel interface tells the peer's uid here: "ucred", "xucred", or None (none known)."""
    if platform.startswith("linux"):
        return "ucred"
    if platform == "darwin" or "bsd" in platform or platform.startswith("dragonfly"):
        return "xucred"
    return None


def peer_uid(getsockopt: "Callable[[int, int, int], bytes]", platform: str = sys.platform) -> "int | None":
    """The uid of the process at the other end of a connected Unix socket (its bound ``getsockopt``).

    None where no interface is known. Raises OSError from the kernel or ValueError for an answer of
    the wrong shape: both mean "not proven to be us", so callers refuse.
    """
    how = peer_method(platform)
    if how == "ucred":
        return parse_ucred(getsockopt(_socket.SOL_SOCKET, SO_PEERCRED, UCRED_SIZE))
    if how == "xucred":
        return parse_xucred(getsockopt(SOL_LOCAL, LOCAL_PEERCRED, XUCRED_SIZE))
    return None


def foreign_peer(getsockopt: "Callable[[int, int, int], bytes]") -> "str | None":
    """Why the peer is not us (one line), or None when the kernel says it runs as our uid."""
    try:
        uid = peer_uid(getsockopt)
    except (OSError, ValueError) as exc:
        return "cannot tell which user answers on the broker socket (%s)" % _strerror(exc)
    if uid is None:
        return "this system cannot tell which user answers on the broker socket"
    if uid != _uid():
        return "the broker socket is answered by a process of uid %d, not by your kubetray daemon" % uid
    return None
