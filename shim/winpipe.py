"""The shim's side of the Windows named pipe: find the user's pipe, check who serves it, talk.

Standard library only (ctypes; no pywin32), and imported only on Windows, by shim.main. The daemon
imports the shared pieces too (the pipe name, the token SID lookup), as it imports shim.wire, so both
sides agree by construction. Everything that needs Win32 first checks ``sys.platform`` (mypy then
skips those bodies on other platforms); everything else is a plain function, unit-tested on Linux.

Before sending a byte the shim asks the kernel which process serves the pipe and refuses one that runs
as another user: a squatter that took our pipe name never sees the request. The pipe is opened at
SECURITY_IDENTIFICATION, so even that squatter could only learn who we are, never act as us.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable
from typing import Any

PIPE_PREFIX = "\\\\.\\pipe\\"
PIPE_BASENAME = "kubetray-"

GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
OPEN_EXISTING = 3
SECURITY_SQOS_PRESENT = 0x00100000
SECURITY_IDENTIFICATION = 1 << 16  # SecurityIdentification (1) in the impersonation-level bits
CLIENT_ACCESS = GENERIC_READ | GENERIC_WRITE
CLIENT_FLAGS = SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION

ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_BROKEN_PIPE = 109
ERROR_SEM_TIMEOUT = 121
ERROR_PIPE_BUSY = 231
ERROR_NO_DATA = 232
ERROR_PIPE_NOT_CONNECTED = 233

TOKEN_QUERY = 0x0008
TOKEN_USER_CLASS = 1  # TOKEN_INFORMATION_CLASS.TokenUser
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000


def is_sid(text: str) -> bool:
    """A string SID as ConvertSidToStringSidW writes it: ``S-1-<authority>-<sub>…`` (digits only)."""
    parts = text.split("-")
    return len(parts) >= 3 and parts[:2] == ["S", "1"] and all(p.isdigit() and p.isascii() for p in parts[2:])


def pipe_name(sid: str) -> str:
    """The user's pipe, ``\\\\.\\pipe\\kubetray-<SID>``: one per user, and no user can pick another's."""
    # The SID also goes into the pipe's SDDL: anything but a SID here would be an injection.
    if not is_sid(sid):
        raise ValueError(f"not a string SID: {sid!r}")
    return PIPE_PREFIX + PIPE_BASENAME + sid


def resolve_pipe_name(path: str, sid: str) -> str:
    """``path`` if it already names a pipe (a KUBETRAY_SOCKET override), otherwise the user's pipe.

    wire.socket_path() returns a file path on every OS; on Windows that path only matters when it names
    a pipe, so tests can run a daemon of their own beside the real one.
    """
    if path.lower().startswith(PIPE_PREFIX) and len(path) > len(PIPE_PREFIX):
        return path
    return pipe_name(sid)


def last_error_code() -> int:
    """The thread's last Win32 error as ctypes saved it (use_last_error=True); 0 off Windows."""
    if sys.platform != "win32":
        return 0
    return ctypes.get_last_error()


def os_error(cls: type[OSError], message: str) -> OSError:
    """An OSError whose str() and strerror are the one-line ``message`` (shim.main prints either)."""
    exc = cls(message)
    exc.strerror = message  # set alone, so str() stays the bare message, without "[Errno n]"
    return exc


def connect_error(code: int, name: str) -> OSError:
    """A Win32 error from opening ``name``, as the OSError subclass shim.main acts on."""
    if code == ERROR_FILE_NOT_FOUND:  # shim.main then starts the daemon
        return os_error(FileNotFoundError, f"no kubetray daemon is listening on {name}")
    if code == ERROR_ACCESS_DENIED:
        return os_error(
            PermissionError,
            f"the pipe {name} exists but does not let you in: a process of another user holds its name",
        )
    if code in (ERROR_PIPE_BUSY, ERROR_SEM_TIMEOUT):
        return os_error(TimeoutError, f"the kubetray daemon on {name} stayed busy; run kubectl again")
    return os_error(OSError, f"cannot open {name} (Windows error {code})")


def io_error(code: int) -> OSError:
    """A Win32 error from reading or writing a connected pipe."""
    if code in (ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED):
        return os_error(BrokenPipeError, "the kubetray daemon closed the pipe")
    return os_error(OSError, f"pipe I/O failed (Windows error {code})")


def check_server_sid(server_sid: str, own_sid: str, name: str) -> None:
    """Refuse a pipe whose server runs as another user (a squatter on our name)."""
    if server_sid.upper() != own_sid.upper():
        raise os_error(
            PermissionError,
            f"the pipe {name} is served by a process of another user ({server_sid}), not by your kubetray daemon",
        )


class _Api:
    """kernel32 and advapi32 with prototypes: without restype=HANDLE a 64-bit handle is truncated."""

    k32: Any
    a32: Any
    invalid_handle: int | None

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise OSError("named pipes exist only on Windows")
        from ctypes import wintypes as w

        self.k32 = k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        self.a32 = a32 = ctypes.WinDLL("advapi32", use_last_error=True)
        dword_p = ctypes.POINTER(w.DWORD)
        for dll, fname, restype, argtypes in (
            (k32, "CreateFileW", w.HANDLE, (w.LPCWSTR, w.DWORD, w.DWORD, w.LPVOID, w.DWORD, w.DWORD, w.HANDLE)),
            (k32, "WaitNamedPipeW", w.BOOL, (w.LPCWSTR, w.DWORD)),
            (k32, "ReadFile", w.BOOL, (w.HANDLE, w.LPVOID, w.DWORD, dword_p, w.LPVOID)),
            (k32, "PeekNamedPipe", w.BOOL, (w.HANDLE, w.LPVOID, w.DWORD, dword_p, dword_p, dword_p)),
            (k32, "WriteFile", w.BOOL, (w.HANDLE, w.LPCVOID, w.DWORD, dword_p, w.LPVOID)),
            (k32, "CloseHandle", w.BOOL, (w.HANDLE,)),
            (k32, "LocalFree", w.HLOCAL, (w.HLOCAL,)),
            (k32, "GetCurrentProcess", w.HANDLE, ()),
            (k32, "OpenProcess", w.HANDLE, (w.DWORD, w.BOOL, w.DWORD)),
            (k32, "GetNamedPipeServerProcessId", w.BOOL, (w.HANDLE, ctypes.POINTER(w.ULONG))),
            (k32, "GetNamedPipeClientProcessId", w.BOOL, (w.HANDLE, ctypes.POINTER(w.ULONG))),
            (a32, "OpenProcessToken", w.BOOL, (w.HANDLE, w.DWORD, ctypes.POINTER(w.HANDLE))),
            (a32, "GetTokenInformation", w.BOOL, (w.HANDLE, ctypes.c_int, w.LPVOID, w.DWORD, dword_p)),
            (a32, "ConvertSidToStringSidW", w.BOOL, (w.LPVOID, ctypes.POINTER(w.LPWSTR))),
        ):
            func = getattr(dll, fname)
            func.restype, func.argtypes = restype, argtypes
        self.invalid_handle = ctypes.c_void_p(-1).value

    def last_error(self, what: str) -> OSError:
        code = last_error_code()
        return os_error(OSError, f"{what} failed (Windows error {code})")

    def valid(self, handle: Any) -> bool:
        return handle is not None and handle != 0 and handle != self.invalid_handle

    def process_sid(self, pid: int | None = None) -> str:
        """The user SID of process ``pid`` (this process when None), from its token."""
        if sys.platform != "win32":
            raise OSError("tokens exist only on Windows")
        from ctypes import wintypes as w

        own = pid is None
        process = self.k32.GetCurrentProcess() if own else self.k32.OpenProcess(
            PROCESS_QUERY_LIMITED_INFORMATION, False, pid
        )
        if not self.valid(process) and not own:
            raise self.last_error(f"OpenProcess({pid})")
        try:
            token = w.HANDLE()
            if not self.a32.OpenProcessToken(process, TOKEN_QUERY, ctypes.byref(token)):
                raise self.last_error("OpenProcessToken")
            try:
                size = w.DWORD()
                self.a32.GetTokenInformation(token, TOKEN_USER_CLASS, None, 0, ctypes.byref(size))
                buf = ctypes.create_string_buffer(size.value)
                if not self.a32.GetTokenInformation(token, TOKEN_USER_CLASS, buf, size, ctypes.byref(size)):
                    raise self.last_error("GetTokenInformation(TokenUser)")
                psid = ctypes.cast(buf, ctypes.POINTER(ctypes.c_void_p))[0]  # TOKEN_USER.User.Sid
                text = w.LPWSTR()
                if not self.a32.ConvertSidToStringSidW(psid, ctypes.byref(text)):
                    raise self.last_error("ConvertSidToStringSidW")
                try:
                    return str(text.value)
                finally:
                    self.k32.LocalFree(text)
            finally:
                self.k32.CloseHandle(token)
        finally:
            if not own:  # the pseudo-handle of the current process is never closed
                self.k32.CloseHandle(process)


_api: _Api | None = None


def api() -> _Api:
    """The Win32 bindings, loaded on first use (raises OSError off Windows)."""
    global _api
    if _api is None:
        _api = _Api()
    return _api


def wait_readable(
    peek: Callable[[], int | None], timeout: float,
    monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once ``peek`` reports bytes waiting (or None: the pipe broke, ReadFile will say so);
    raise TimeoutError after ``timeout`` seconds of nothing. A synchronous pipe read cannot time out, so
    the shim's bound on the daemon's silence is kept by polling PeekNamedPipe."""
    deadline = monotonic() + timeout
    while True:
        available = peek()
        if available is None or available > 0:
            return
        if monotonic() >= deadline:
            raise TimeoutError(f"nothing from the pipe for {timeout:g} s")
        sleep(0.02)


class PipeConnection:
    """A connected pipe handle with the socket methods shim.main uses (sendall, recv, settimeout, close)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._timeout: float | None = None

    def settimeout(self, timeout: float | None) -> None:
        """Bound each recv, as a socket's timeout does (TimeoutError when it passes)."""
        self._timeout = timeout

    def _peek(self) -> int | None:
        if sys.platform != "win32":
            raise OSError("named pipes exist only on Windows")
        from ctypes import wintypes as w

        available = w.DWORD()
        if not api().k32.PeekNamedPipe(self._handle, None, 0, None, ctypes.byref(available), None):
            return None
        return int(available.value)

    def sendall(self, data: bytes) -> None:
        if sys.platform != "win32":
            raise OSError("named pipes exist only on Windows")
        from ctypes import wintypes as w

        view, done = memoryview(data), w.DWORD()
        while view:
            if not api().k32.WriteFile(self._handle, bytes(view), len(view), ctypes.byref(done), None):
                raise io_error(last_error_code())
            view = view[done.value :]

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" once the daemon has closed its end (after the last reply)."""
        if sys.platform != "win32":
            raise OSError("named pipes exist only on Windows")
        from ctypes import wintypes as w

        if self._timeout is not None:
            wait_readable(self._peek, self._timeout)
        buf, got = ctypes.create_string_buffer(size), w.DWORD()
        if not api().k32.ReadFile(self._handle, buf, size, ctypes.byref(got), None):
            code = last_error_code()
            if code == ERROR_BROKEN_PIPE:
                return b""
            raise io_error(code)
        return buf.raw[: got.value]

    def close(self) -> None:
        if self._handle is not None:
            api().k32.CloseHandle(self._handle)
            self._handle = None

    def __enter__(self) -> PipeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(path: str, timeout: float = 5.0) -> PipeConnection:
    """Open the user's pipe (or ``path`` if it names one) and check it is served by this user."""
    win = api()
    own = win.process_sid()
    name = resolve_pipe_name(path, own)
    deadline = time.monotonic() + timeout
    while True:
        handle = win.k32.CreateFileW(name, CLIENT_ACCESS, 0, None, OPEN_EXISTING, CLIENT_FLAGS, None)
        if win.valid(handle):
            break
        code = last_error_code()
        remaining = deadline - time.monotonic()
        if code != ERROR_PIPE_BUSY or remaining <= 0:
            raise connect_error(code, name)
        # Every instance is serving someone: wait for the daemon to offer the next one.
        win.k32.WaitNamedPipeW(name, max(1, int(remaining * 1000)))
    conn = PipeConnection(handle)
    try:
        pid = ctypes.c_ulong()
        if not win.k32.GetNamedPipeServerProcessId(handle, ctypes.byref(pid)):
            raise win.last_error("GetNamedPipeServerProcessId")
        check_server_sid(win.process_sid(pid.value), own, name)
    except BaseException:
        conn.close()
        raise
    return conn
