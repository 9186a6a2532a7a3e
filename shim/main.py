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

# The caller's environment the daemon needs to act as kubelogin would inside kubectl's (exec.env merged
# over it): exactly what Azure kubelogin, azidentity and int128/kubelogin read, and nothing else, so no
# unrelated secret of the shell (AZURE_OPENAI_API_KEY, …) ever leaves this process. docs/protocol.md
# lists and explains each; the daemon filters by the same list.
FORWARDED_ENV = frozenset((
    # kubelogin's overrides (AAD_* by prefix below) and the Azure SDK's names kubelogin reads
    "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_PASSWORD",
    # the Azure CLI (azurecli): whose sign-in it uses, how long it may take, where it is found
    "AZURE_CONFIG_DIR", "AZURE_CLI_TIMEOUT", "PATH",
    # managed identity (App Service, Functions, Service Fabric, Arc, Cloud Shell, the IMDS endpoint)
    "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET",
    "IMDS_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    # --use-azurerm-env-vars (Terraform's names), Azure Pipelines and GitHub Actions federation
    "ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_CLIENT_CERTIFICATE_PATH", "ARM_CLIENT_CERTIFICATE_PASSWORD",
    "ARM_TENANT_ID", "AZURESUBSCRIPTION_CLIENT_ID", "AZURESUBSCRIPTION_TENANT_ID",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "SYSTEM_ACCESSTOKEN", "SYSTEM_OIDCREQUESTURI",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL",
    # the network the caller meant: proxies (both spellings) and the CA bundle
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
))
FORWARDED_ENV_PREFIXES = ("AAD_",)


def is_forwarded(name: str) -> bool:
    """Whether the daemon may see this variable of the caller's (shared with the daemon's filter)."""
    return name in FORWARDED_ENV or name.startswith(FORWARDED_ENV_PREFIXES)


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
        _q(k) + ":" + _q(v)
        for k, v in environ.items()
        if is_forwarded(k)
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
    """Connect to the daemon's socket and prove, before a byte is sent, that it runs as us.

    The directory is checked first (lstat: a real directory of ours, mode 0700), so nothing is
    touched in a place another user prepared; then the kernel says which uid is at the other end
    (SO_PEERCRED / LOCAL_PEERCRED). The socket file's owner proves nothing: whoever can swap the
    path between a stat and the connect would win. Raises FileNotFoundError when the directory or
    socket is missing (the caller starts the daemon), PermissionError with a one-line reason.
    """
    if sys.platform == "win32":  # a per-user named pipe; the server's SID is checked before anything is sent
        from shim import winpipe

        return winpipe.connect(path)  # type: ignore[return-value]  # PipeConnection quacks like a socket
    problem = wire.check_dir(wire.split_socket_path(path)[0])  # FileNotFoundError: no directory yet
    if problem:
        raise PermissionError(problem)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)  # a daemon with a full backlog must not hang kubectl
        wire.unix_call(sock.connect, path)
        problem = wire.foreign_peer(sock.getsockopt)
        if problem:
            raise PermissionError(problem + "; nothing was sent. Remove it (`rm %s`) and run kubectl again" % path)
    except BaseException:
        sock.close()
        raise
    return sock


CONNECT_TIMEOUT = 10.0
# How long the shim waits for the daemon's next line. A sign-in may take minutes with nothing to say
# (a browser tab open, a device code waiting; a second kubectl joining a sign-in hears nothing until it
# ends), so the bound is the longest a sign-in may take: 15 minutes (the lifetime of an Entra device
# code), or the kubeconfig's own --timeout / --authentication-timeout-sec plus a minute when longer.
# Every line the daemon sends starts the wait again.
REPLY_SILENCE = 900.0
SILENCE_MARGIN = 60.0
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "\u00b5s": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> "float | None":
    """Seconds in a Go duration such as ``90s``, ``5m`` or ``1h30m`` (kubelogin's --timeout); None if not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    total, i, n = 0.0, 0, len(text)
    if not n:
        return None
    while i < n:
        j = i
        while j < n and (text[j].isdigit() or text[j] == "."):
            j += 1
        k = j
        while k < n and not (text[k].isdigit() or text[k] == "."):
            k += 1
        unit = _DURATION_UNITS.get(text[j:k])
        if j == i or unit is None:
            return None
        try:
            total += float(text[i:j]) * unit
        except ValueError:  # "1.2.3s"
            return None
        i = k
    return total


def reply_silence(argv: "list[str]") -> float:
    """The bound on the daemon's silence for this call (see REPLY_SILENCE)."""
    longest = 0.0
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if not eq and i + 1 < len(argv):
            value = argv[i + 1]
        seconds: float | None = None
        if name == "--timeout":
            seconds = go_duration(value)
        elif name == "--authentication-timeout-sec" and value.isdigit():
            seconds = float(value)
        if seconds is not None and seconds > longest:
            longest = seconds
    return max(REPLY_SILENCE, longest + SILENCE_MARGIN)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def exchange(sock: "_socket.socket", request: bytes, silence: float = REPLY_SILENCE) -> int:
    """Send one request, relay progress to stderr, print the credential; return the exit status.

    Each reply line may be at most wire.MAX_REPLY_BYTES long, and the daemon may be silent for at most
    ``silence`` seconds between lines: past either, the shim stops with one line saying so.
    """
    sock.settimeout(silence)
    sock.sendall(request)
    buf = b""
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > wire.MAX_REPLY_BYTES:
                return _fail("the kubetray daemon sent a reply longer than %d bytes; see `kubetray status` "
                             "and its log" % wire.MAX_REPLY_BYTES)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return _fail("the kubetray daemon said nothing for %d s; run kubectl again, or see "
                             "`kubetray status` and its log" % silence)
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
    """One kubectl call: connect (starting the daemon if none answers), exchange, return the status."""
    if not argv or argv[0] in ("-h", "--help", "help", "--version", "version"):
        from shim import usage

        return usage.show(argv)
    request = encode_request(argv, wire.environ())
    path = wire.socket_path()
    try:
        sock = connect(path)
    except PermissionError as exc:
        return _fail("refusing to use the broker socket: %s" % (exc.strerror or exc))
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
        return exchange(sock, request, reply_silence(argv))
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
