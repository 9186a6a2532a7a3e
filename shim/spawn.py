"""How the shim starts the daemon: its command line, its environment, its process flags, per OS.

Pure functions of (environment, platform, interpreter), so every OS's answer is unit-tested on any OS;
shim.launch does the I/O. Standard library only and imported only on the slow path (no daemon yet).

The daemon outlives the kubectl that started it and serves every later call, so it must not inherit
that one call's accidents: an interpreter hook (LD_PRELOAD, PYTHONPATH, PYTHONSTARTUP …), a secret in
the shell (AZURE_CLIENT_SECRET, an unrelated API key), a kubeconfig's per-call exec.env. It runs under
``python -I`` (no PYTHON* variables, no user site, no current directory on sys.path) with an
environment built from an explicit allowlist; per-call context travels with each request instead.
"""

from __future__ import annotations

from collections.abc import Callable

# The desktop session and the user's own locations: what the daemon needs to find its keyring, its
# tray host, its files and a browser for sign-ins.
SESSION = frozenset({
    "HOME", "USER", "LOGNAME", "PATH", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
    "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS",
    "DESKTOP_SESSION", "GDK_BACKEND", "GDK_SCALE", "GTK_THEME", "NO_AT_BRIDGE",  # the tray's toolkit
    "BROWSER",  # how the person wants sign-in pages opened
    "KUBECONFIG",  # the tray names the kubeconfig contexts of each profile
})
SESSION_PREFIXES = ("LC_", "XDG_")  # locale categories; XDG base and session directories
# kubetray's own settings that are the daemon's (where it listens and keeps its files, storage choices).
KUBETRAY = frozenset({
    "KUBETRAY_RUNTIME_DIR", "KUBETRAY_SOCKET", "KUBETRAY_STATE_DIR", "KUBETRAY_LOG_DIR",
    "KUBETRAY_OS_BROKER", "KUBETRAY_KEYRING_CHUNK_SIZE", "KUBETRAY_TRANSPORT",
})
# The daemon's own network defaults: one rule, the environment it was started in (see docs/security.md
# and `kubetray status`). A kubeconfig's per-call values travel with its requests instead.
NETWORK = frozenset({
    "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
})
# What Windows programs expect to find (Python's socket and ssl need SYSTEMROOT).
WINDOWS = frozenset({
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "USERNAME", "USERDOMAIN",
    "APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "PROGRAMFILES", "TEMP", "TMP", "HOMEDRIVE", "HOMEPATH",
    "PROCESSOR_ARCHITECTURE", "NUMBER_OF_PROCESSORS",
})
MACOS = frozenset({"__CF_USER_TEXT_ENCODING"})

# Extra names the person lets through (comma-separated), e.g. what a custom BROWSER script reads.
EXTRA_VARIABLE = "KUBETRAY_DAEMON_ENV"
# Never let through, whatever EXTRA_VARIABLE says: loader and interpreter hooks, and anything named like a
# secret (the daemon keeps secrets in memory, from requests, never in its environment).
_HOOK_PREFIXES = ("LD_", "DYLD_", "PYTHON")
_SECRET_WORDS = ("SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIAL", "APIKEY", "API_KEY", "PRIVATE")

# Windows process-creation flags: no console window (pythonw has none; DETACHED_PROCESS and
# CREATE_NO_WINDOW keep python.exe from opening one), and out of kubectl's console group, so Ctrl-C in
# that console does not stop the daemon.
DETACHED_PROCESS = 0x00000008
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000
WINDOWS_FLAGS = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW


class SpawnRefused(ValueError):
    """The environment asks for something the daemon must not get; the message says what to change."""


def looks_secret(name: str) -> bool:
    """Whether a variable's name says it holds a secret (…SECRET, …PASSWORD, …TOKEN, …)."""
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)


def refused_extra(name: str) -> bool:
    """Whether ``name`` may never be let through by KUBETRAY_DAEMON_ENV."""
    return name.upper().startswith(_HOOK_PREFIXES) or looks_secret(name)


def allowed(name: str, platform: str) -> bool:
    """Whether the daemon inherits the variable ``name`` without being asked."""
    if platform == "win32":  # Windows' environment is case-insensitive
        upper = name.upper()
        return any(upper in {n.upper() for n in names} for names in (WINDOWS, SESSION, KUBETRAY, NETWORK))
    return (name in SESSION or name in KUBETRAY or name in NETWORK or name.startswith(SESSION_PREFIXES)
            or (platform == "darwin" and name in MACOS))


def daemon_env(environ: dict[str, str], platform: str) -> dict[str, str]:
    """The daemon's environment: the allowlisted part of ``environ`` plus what KUBETRAY_DAEMON_ENV names.

    Raises SpawnRefused when KUBETRAY_DAEMON_ENV names a hook or a secret-like variable.
    """
    env = {k: v for k, v in environ.items() if allowed(k, platform)}
    extra = [n.strip() for n in environ.get(EXTRA_VARIABLE, "").split(",") if n.strip()]
    for name in extra:
        if refused_extra(name):
            raise SpawnRefused(
                f"{EXTRA_VARIABLE} names {name}, which the daemon never inherits (an interpreter hook or a "
                f"secret); remove it from {EXTRA_VARIABLE}"
            )
        if name in environ:
            env[name] = environ[name]
    if extra:
        env[EXTRA_VARIABLE] = ",".join(extra)
    return env


def interpreter(python: str, platform: str, exists: Callable[[str], bool]) -> str:
    """The interpreter to run the daemon with: on Windows pythonw.exe beside python.exe (no console)."""
    if platform != "win32":
        return python
    head, sep, tail = python.replace("/", "\\").rpartition("\\")
    if tail.lower() == "python.exe" and exists(head + sep + "pythonw.exe"):
        return head + sep + "pythonw.exe"
    return python


def command(python: str) -> list[str]:
    """The daemon's command line: an isolated interpreter (-I) running the installed broker."""
    return [python, "-I", "-m", "broker", "run", "--detach"]


def creation_flags(platform: str) -> int:
    """Popen ``creationflags``: Windows only (POSIX detaches with a new session instead)."""
    return WINDOWS_FLAGS if platform == "win32" else 0
