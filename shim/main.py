"""kubetray-shim: the exec credential plugin kubectl runs on every call.

It forwards its arguments and KUBERNETES_EXEC_INFO to the daemon and prints the ExecCredential the
daemon answers. The fast path imports only the builtin ``_socket`` and the tiny shim.wire, because
Python start-up is most of its cost: ``socket`` and ``json`` would each almost double it, and even
``os`` costs a tenth of it (shim.wire uses the builtin ``posix`` that ``os`` wraps). Anything rare
(starting the daemon, printing progress or errors) imports what it needs when it happens.
"""

import _socket
import sys

from shim import wire
from shim.wire import builtin_os as os  # posix (or nt): what os wraps, without its import cost

_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"
# Arguments undecodable as UTF-8 arrive as lone surrogates (surrogateescape); JSON can carry them.
_ESCAPES.update({i: f"\\u{i:04x}" for i in range(0xDC80, 0xDD00)})

# Environment variables the daemon may need to interpret the arguments as kubelogin would.
_FORWARDED_ENV_PREFIXES = wire.FORWARDED_ENV_PREFIXES


def origin() -> str:
    """This host's name, for the daemon to show when the call is forwarded (informational only)."""
    if sys.platform == "win32":  # nt has no uname
        return wire.getenv("COMPUTERNAME")
    return os.uname().nodename  # posix.uname: a builtin, no socket module


def _q(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def encode_request(argv: "list[str]", environ: "dict[str, str]") -> bytes:
    """The ``exec`` request line, JSON written by hand (see module docstring)."""
    info = environ.get("KUBERNETES_EXEC_INFO")
    env = ",".join(
        _q(k) + ":" + _q(v) for k, v in environ.items() if k.startswith(_FORWARDED_ENV_PREFIXES)
    )
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    line = (
        '{"v":%d,"op":"exec","argv":[%s],"exec_info":%s,"stdin_tty":%s,"cwd":%s,"env":{%s},"origin":%s}\n'
        % (
            wire.PROTOCOL_VERSION,
            ",".join(_q(a) for a in argv),
            "null" if info is None else _q(info),
            "true" if os.isatty(0) else "false",
            _q(cwd),
            env,
            _q(origin()),
        )
    )
    return line.encode("utf-8", "surrogatepass")


def connect(path: str) -> "_socket.socket":
    """Connect to the daemon's socket, refusing one that another user owns."""
    if sys.platform == "win32":  # a per-user named pipe; the server's SID is checked before anything is sent
        from shim import winpipe

        return winpipe.connect(path)  # type: ignore[return-value]  # PipeConnection quacks like a socket
    st = os.stat(path)
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise PermissionError("socket %s is owned by uid %d, not by you" % (path, st.st_uid))
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def exchange(sock: "_socket.socket", request: bytes) -> int:
    """Send one request, relay progress to stderr, print the credential; return the exit status."""
    sock.sendall(request)
    buf = b""
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            chunk = sock.recv(65536)
            if not chunk:
                return _fail("the kubetray daemon closed the connection; see `kubetray status` and its log")
            buf += chunk
            continue
        line, buf = buf[:nl], buf[nl + 1 :]
        if line.startswith(wire.CREDENTIAL_PREFIX) and line.endswith(b"}"):
            _write_all(1, line[len(wire.CREDENTIAL_PREFIX) : -1] + b"\n")
            return 0
        status = _other_reply(line)
        if status is not None:
            return status


def _other_reply(line: bytes) -> "int | None":
    """Progress or error lines: rare, so json is imported only here."""
    import json

    try:
        msg = json.loads(line)
        kind = msg["type"]
    except (ValueError, KeyError, TypeError):
        return _fail("the kubetray daemon sent a reply this shim does not understand; reinstall kubetray")
    if kind == "progress":
        from shim.text import printable  # a provider's words: no escape sequence reaches the terminal

        _write_all(2, (printable(str(msg.get("message", ""))) + "\n").encode("utf-8", "replace"))
        return None
    if kind == "error":
        return _fail(str(msg.get("message") or msg.get("code") or "unknown error"))
    return _fail(f"the kubetray daemon sent an unexpected {kind!r} reply; reinstall kubetray")


def _fail(message: str) -> int:
    from shim.text import printable  # only on the way out: the fast path never gets here

    _write_all(2, (f"kubetray: {printable(message)}\n").encode("utf-8", "replace"))
    return 1


def run(argv: "list[str]") -> int:
    if not argv or argv[0] in ("-h", "--help", "help", "--version", "version"):
        from shim import usage

        return usage.show(argv)
    request = encode_request(argv, wire.environ())
    path = wire.socket_path()
    try:
        sock = connect(path)
    except PermissionError as exc:
        return _fail(f"refusing to use the broker socket: {exc}. Remove it and run kubectl again")
    except OSError as exc:
        import shim

        if shim.REMOTE:  # the single-file shim on an ssh host: the daemon is on the desktop, never here
            return _fail(
                f"nothing answers on {path} ({exc.strerror}): is the ssh session that forwards it open? "
                "Connect with the RemoteForward lines `kubetray remote ssh-config HOST` prints on the desktop"
            )
        from shim import launch

        try:
            sock = launch.start_daemon_and_connect(path)
        except launch.LaunchError as exc:
            return _fail(str(exc))
    try:
        return exchange(sock, request)
    except OSError as exc:
        return _fail(f"lost the connection to the kubetray daemon ({exc.strerror}); run kubectl again")
    finally:
        sock.close()


def main() -> None:
    """Console entry point: ``kubetray-shim get-token …``."""
    try:
        status = run(sys.argv[1:])
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


if __name__ == "__main__":
    main()
