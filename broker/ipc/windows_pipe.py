"""The Windows named-pipe transport: the same three duties as unix.py, with Win32 means.

- Secure the endpoint: the pipe is created with an explicit, protected DACL naming only the user's SID,
  refuses remote clients, and is the first instance of its name (FILE_FLAG_FIRST_PIPE_INSTANCE), so a
  process that took the name before us makes the daemon fail loudly instead of sharing it. The DACL
  is read back after creation and must be exactly ours.
- Listen: a small threaded server over overlapped ConnectNamedPipe/ReadFile/WriteFile (asyncio's
  ``start_serving_pipe`` can set neither a DACL nor FIRST_PIPE_INSTANCE). Each connection's request
  line goes to a ``Dispatch`` callable; ``transport.on_loop`` makes one that runs Handler.handle on a loop.
- Tell who is calling: the client's process token must carry the daemon's SID (the DACL already keeps
  other users out; this is the same belt-and-braces check as the peer uid on Unix).

The Win32 calls sit in ``_Win32`` and ``PipeServer``, which refuse to load off Windows (mypy skips their
bodies there); everything else is plain functions, unit-tested on Linux, as is the platform-neutral
session in transport.py that ``PipeServer`` drives for each connection.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any

from broker.core.errors import Busy, InsecureRuntimeDir
from broker.ipc import framing
from broker.ipc.server import Limits
from broker.ipc.transport import Dispatch, serve_connection
from shim import winpipe

log = logging.getLogger(__name__)

PIPE_ACCESS_DUPLEX = 0x00000003
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
FILE_FLAG_OVERLAPPED = 0x40000000
PIPE_TYPE_BYTE = 0x00000000
PIPE_READMODE_BYTE = 0x00000000
PIPE_WAIT = 0x00000000
PIPE_REJECT_REMOTE_CLIENTS = 0x00000008
PIPE_UNLIMITED_INSTANCES = 255
PIPE_BUFFER_SIZE = 64 * 1024
ERROR_INVALID_NAME = 123

# GENERIC_ALL as written; the pipe file system maps it to FILE_ALL_ACCESS, which reads back as "FA".
FULL_ACCESS = ("GA", "FA", "0x1f01ff")
# ConvertSecurityDescriptorToStringSecurityDescriptor writes these SIDs as aliases.
SID_ALIASES = {"SY": "S-1-5-18", "LS": "S-1-5-19", "NS": "S-1-5-20"}
DACL_FLAGS = ("NO_ACCESS_CONTROL", "AR", "AI", "P")  # longest first, for the greedy parse


def open_mode(first: bool) -> int:
    """dwOpenMode: duplex and overlapped; the first instance must also be the first of its name."""
    mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED
    return mode | FILE_FLAG_FIRST_PIPE_INSTANCE if first else mode


def pipe_mode() -> int:
    """dwPipeMode: a byte stream like the Unix socket (same framing), never reachable over SMB."""
    return PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS


def dacl_sddl(sid: str) -> str:
    """A protected DACL ("P": nothing inherited) with one ACE: full access for ``sid`` alone."""
    if not winpipe.is_sid(sid):
        raise ValueError(f"not a string SID: {sid!r}")
    return f"D:P(A;;GA;;;{sid})"


@dataclass(frozen=True)
class Ace:
    """One ACE of an SDDL string: ``(type;flags;rights;object_guid;inherit_object_guid;sid)``."""

    type: str
    flags: str
    rights: str
    object_guid: str
    inherit_guid: str
    sid: str


def parse_dacl(sddl: str) -> tuple[frozenset[str], list[Ace]]:
    """The DACL flags and ACEs of an SDDL string (which may carry O:, G: and S: parts too)."""
    start = sddl.find("D:")
    if start < 0:
        raise ValueError("no DACL (D:) in the security descriptor")
    body, depth, end = sddl[start + 2 :], 0, None
    for i, ch in enumerate(body):  # the DACL ends where a SACL (S:) starts outside any ACE
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and body.startswith("S:", i):
            end = i
            break
    body = body[:end]
    head, _, rest = body.partition("(")
    flags: set[str] = set()
    while head:
        flag = next((f for f in DACL_FLAGS if head.startswith(f)), None)
        if flag is None:
            raise ValueError(f"unknown DACL flags {head!r}")
        flags.add(flag)
        head = head[len(flag) :]
    aces: list[Ace] = []
    rest = "(" + rest if rest or body.endswith("(") else ""
    while rest:
        if not rest.startswith("(") or ")" not in rest:
            raise ValueError(f"malformed ACE list {rest!r}")
        ace, rest = rest[1 : rest.index(")")], rest[rest.index(")") + 1 :]
        fields = ace.split(";")
        if len(fields) != 6:
            raise ValueError(f"malformed ACE ({ace})")
        aces.append(Ace(*fields))
    return frozenset(flags), aces


def dacl_problem(sddl: str, sid: str) -> str | None:
    """Why ``sddl`` is not exactly "only ``sid``, full access, nothing inherited"; None if it is."""
    try:
        flags, aces = parse_dacl(sddl)
    except ValueError as exc:
        return str(exc)
    if "P" not in flags or "NO_ACCESS_CONTROL" in flags:
        return f"the DACL is not protected ({sddl})"
    if len(aces) != 1:
        return f"the DACL has {len(aces)} entries, not 1 ({sddl})"
    ace = aces[0]
    owner = SID_ALIASES.get(ace.sid, ace.sid)
    if ace.type != "A" or ace.flags or ace.object_guid or ace.inherit_guid:
        return f"the DACL entry is not a plain allow entry ({sddl})"
    if ace.rights.upper() not in (r.upper() for r in FULL_ACCESS):
        return f"the DACL grants {ace.rights}, not full access ({sddl})"
    if owner.upper() != sid.upper():
        return f"the DACL names {owner}, not {sid} ({sddl})"
    return None


def create_error_message(code: int, name: str) -> str:
    """One line for a failed CreateNamedPipeW of the first instance (the daemon refuses to start)."""
    if code in (winpipe.ERROR_ACCESS_DENIED, winpipe.ERROR_PIPE_BUSY):
        return (f"another process already holds the pipe name {name} (another kubetray daemon, or a program "
                "squatting on it); stop it, or sign out and in again, then start kubetray")
    if code == ERROR_INVALID_NAME:
        return f"the pipe name {name} is not valid; unset KUBETRAY_SOCKET or give it a \\\\.\\pipe\\ name"
    return f"cannot create the pipe {name} (Windows error {code})"


def refuse_start(code: int, name: str) -> InsecureRuntimeDir:
    """The error the daemon stops with when the pipe cannot be ours (printed as one line)."""
    return InsecureRuntimeDir(create_error_message(code, name))


# -- Win32 ------------------------------------------------------------------------------------------------
ERROR_IO_PENDING = 997
ERROR_PIPE_CONNECTED = 535
WAIT_OBJECT_0, WAIT_TIMEOUT, INFINITE = 0, 0x102, 0xFFFFFFFF
SDDL_REVISION_1, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION = 1, 6, 4


class _Stopping(Exception):
    """The server is stopping: abandon the operation in progress."""


class _Win32:
    """The server's extra prototypes on the shim's kernel32/advapi32 (which refuse to load off Windows)."""

    def __init__(self) -> None:
        api = winpipe.api()
        self.api, self.k32, self.a32 = api, api.k32, api.a32
        if sys.platform != "win32":
            return
        from ctypes import wintypes as w

        p, ov_p, dword_p = ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(w.DWORD)
        for dll, fname, restype, argtypes in (
            (self.k32, "CreateNamedPipeW", w.HANDLE,
             (w.LPCWSTR, w.DWORD, w.DWORD, w.DWORD, w.DWORD, w.DWORD, w.DWORD, p)),
            (self.k32, "ConnectNamedPipe", w.BOOL, (w.HANDLE, ov_p)),
            (self.k32, "CreateEventW", w.HANDLE, (p, w.BOOL, w.BOOL, w.LPCWSTR)),
            (self.k32, "SetEvent", w.BOOL, (w.HANDLE,)),
            (self.k32, "WaitForMultipleObjects", w.DWORD, (w.DWORD, ctypes.POINTER(w.HANDLE), w.BOOL, w.DWORD)),
            (self.k32, "GetOverlappedResult", w.BOOL, (w.HANDLE, ov_p, dword_p, w.BOOL)),
            (self.k32, "CancelIoEx", w.BOOL, (w.HANDLE, ov_p)),
            (self.a32, "ConvertStringSecurityDescriptorToSecurityDescriptorW", w.BOOL,
             (w.LPCWSTR, w.DWORD, ctypes.POINTER(p), dword_p)),
            (self.a32, "ConvertSecurityDescriptorToStringSecurityDescriptorW", w.BOOL,
             (p, w.DWORD, w.DWORD, ctypes.POINTER(w.LPWSTR), dword_p)),
            (self.a32, "GetSecurityInfo", w.DWORD, (w.HANDLE, ctypes.c_int, w.DWORD, p, p, p, p, ctypes.POINTER(p))),
        ):
            func = getattr(dll, fname)
            func.restype, func.argtypes = restype, argtypes


class _Overlapped(ctypes.Structure):
    _fields_ = [("Internal", ctypes.c_size_t), ("InternalHigh", ctypes.c_size_t), ("Offset", ctypes.c_uint32),
                ("OffsetHigh", ctypes.c_uint32), ("hEvent", ctypes.c_void_p)]


class _SecurityAttributes(ctypes.Structure):
    _fields_ = [("nLength", ctypes.c_uint32), ("lpSecurityDescriptor", ctypes.c_void_p),
                ("bInheritHandle", ctypes.c_int)]


class PipeServer:
    """Serves the pipe ``name`` to ``sid``'s processes: one thread listening, one per connection."""

    def __init__(self, name: str, sid: str, dispatch: Dispatch, limits: Limits | None = None) -> None:
        self.name, self._sid, self._dispatch, self._limits = name, sid, dispatch, limits or Limits()
        self._win = _Win32()
        self._active, self._lock = 0, threading.Lock()
        self._listening = self._create(first=True)  # raises here, before the daemon reports it is up
        self._stop = self._win.k32.CreateEventW(None, True, False, None)  # manual reset: wakes every wait
        self._thread = threading.Thread(target=self._listen, name="kubetray-pipe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._win.k32.SetEvent(self._stop)  # manual reset, so every wait in every thread sees it
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        elif self._thread.ident is None:  # never started: the first instance is still ours to close
            self._win.k32.CloseHandle(self._listening)

    def _create(self, *, first: bool) -> Any:
        """A new instance of the pipe; the first also proves the name is ours and checks its DACL."""
        win, sddl = self._win, dacl_sddl(self._sid)
        sd = ctypes.c_void_p()
        if not win.a32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl, SDDL_REVISION_1, ctypes.byref(sd), None
        ):
            raise win.api.last_error("ConvertStringSecurityDescriptorToSecurityDescriptorW")
        try:
            attrs = _SecurityAttributes(ctypes.sizeof(_SecurityAttributes), sd.value, False)
            handle = win.k32.CreateNamedPipeW(self.name, open_mode(first), pipe_mode(), PIPE_UNLIMITED_INSTANCES,
                                              PIPE_BUFFER_SIZE, PIPE_BUFFER_SIZE, 0, ctypes.byref(attrs))
        finally:
            win.k32.LocalFree(sd)
        if not win.api.valid(handle):
            code = winpipe.last_error_code()
            raise refuse_start(code, self.name) if first else win.api.last_error("CreateNamedPipeW")
        if first:
            problem = dacl_problem(self._read_dacl(handle), self._sid)
            if problem is not None:
                win.k32.CloseHandle(handle)
                raise InsecureRuntimeDir(f"the pipe {self.name} is not private: {problem}; kubetray will not serve it")
        return handle

    def _read_dacl(self, handle: Any) -> str:
        win, sd, text = self._win, ctypes.c_void_p(), ctypes.c_wchar_p()
        code = win.a32.GetSecurityInfo(handle, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION,
                                       None, None, None, None, ctypes.byref(sd))
        if code:
            raise InsecureRuntimeDir(f"cannot read back the DACL of {self.name} (Windows error {code})")
        try:
            if not win.a32.ConvertSecurityDescriptorToStringSecurityDescriptorW(
                sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, ctypes.byref(text), None
            ):
                raise win.api.last_error("ConvertSecurityDescriptorToStringSecurityDescriptorW")
            value = str(text.value)
            win.k32.LocalFree(text)
            return value
        finally:
            win.k32.LocalFree(sd)

    def wait(self, handle: Any, ov: _Overlapped, started: bool, timeout: float | None) -> int:
        """Finish an overlapped operation: bytes moved, TimeoutError, or _Stopping (both cancel it)."""
        k32 = self._win.k32
        if not started and winpipe.last_error_code() != ERROR_IO_PENDING:
            raise winpipe.io_error(winpipe.last_error_code())
        events = (ctypes.c_void_p * 2)(ov.hEvent, self._stop)
        ms = INFINITE if timeout is None else max(0, int(timeout * 1000))
        result, moved = k32.WaitForMultipleObjects(2, events, False, ms), ctypes.c_uint32()
        if result != WAIT_OBJECT_0:
            k32.CancelIoEx(handle, ctypes.byref(ov))
            k32.GetOverlappedResult(handle, ctypes.byref(ov), ctypes.byref(moved), True)  # the kernel lets go of buf
            raise TimeoutError if result == WAIT_TIMEOUT else _Stopping
        if not k32.GetOverlappedResult(handle, ctypes.byref(ov), ctypes.byref(moved), False):
            raise winpipe.io_error(winpipe.last_error_code())
        return moved.value

    def _listen(self) -> None:
        k32, handle = self._win.k32, self._listening
        event = k32.CreateEventW(None, True, False, None)
        try:
            while True:
                ov = _Overlapped(hEvent=event)
                # ERROR_PIPE_CONNECTED: a client connected between CreateNamedPipeW and this call.
                ok = k32.ConnectNamedPipe(handle, ctypes.byref(ov))
                if not ok and winpipe.last_error_code() != ERROR_PIPE_CONNECTED:
                    try:
                        self.wait(handle, ov, False, None)
                    except OSError as exc:
                        # E.g. the client left at once. Replace the instance, the new one first (no lapse).
                        log.warning("a pipe client failed to connect: %s", exc)
                        stale, handle = handle, self._create(first=False)
                        k32.CloseHandle(stale)
                        continue
                # The next instance exists before this one is handed off, so the name never lapses
                # (a lapse would let another process take it).
                connected, handle = handle, self._create(first=False)
                threading.Thread(target=self._serve, args=(connected,), name="kubetray-pipe-conn",
                                 daemon=True).start()
        except _Stopping:
            pass
        except OSError:
            log.exception("the pipe server stopped listening")
        finally:
            k32.CloseHandle(handle)
            k32.CloseHandle(event)

    def _serve(self, handle: Any) -> None:
        conn = _PipeConn(self, handle)
        with self._lock:
            self._active += 1
            busy = self._active > self._limits.max_connections
        try:
            if busy:
                conn.write(framing.error(Busy("the kubetray daemon is busy; try again")))
            else:
                serve_connection(conn, self._dispatch, self._limits, peer_ok=self._client_is_owner(handle))
        except (OSError, _Stopping):
            pass
        finally:
            with self._lock:
                self._active -= 1
            # No DisconnectNamedPipe: it would discard replies the client has not read yet. Closing our end
            # lets the client read them, then see the pipe broken (its end of stream).
            conn.close()

    def _client_is_owner(self, handle: Any) -> bool:
        pid = ctypes.c_ulong()
        try:
            if not self._win.k32.GetNamedPipeClientProcessId(handle, ctypes.byref(pid)):
                return False
            return self._win.api.process_sid(pid.value).upper() == self._sid.upper()
        except OSError:
            return False


class _PipeConn:
    """One connected instance as transport.Conn: overlapped reads and writes that stop() interrupts."""

    def __init__(self, server: PipeServer, handle: Any) -> None:
        self._server, self._handle = server, handle
        self._k32 = server._win.k32
        self._event = self._k32.CreateEventW(None, True, False, None)

    def read(self, size: int, timeout: float) -> bytes:
        buf, ov = ctypes.create_string_buffer(size), _Overlapped(hEvent=self._event)
        started = self._k32.ReadFile(self._handle, buf, size, None, ctypes.byref(ov))
        try:
            return buf.raw[: self._server.wait(self._handle, ov, bool(started), timeout)]
        except BrokenPipeError:
            return b""

    def write(self, data: bytes) -> None:
        while data:
            ov = _Overlapped(hEvent=self._event)
            started = self._k32.WriteFile(self._handle, data, len(data), None, ctypes.byref(ov))
            data = data[self._server.wait(self._handle, ov, bool(started), None) :]

    def close(self) -> None:
        self._k32.CloseHandle(self._handle)
        self._k32.CloseHandle(self._event)
