"""Keep the daemon's memory to itself, with what each OS offers. Best effort: logs what could not be done.

- Linux: no core dumps (RLIMIT_CORE 0) and PR_SET_DUMPABLE 0, which also stops other processes of the
  same user from attaching with ptrace or reading /proc/<pid>/mem.
- macOS: no core dumps (RLIMIT_CORE 0). (PT_DENY_ATTACH would also refuse debuggers, but it makes the
  process die under one, which helps nobody debug a broken broker; not done.)
- Windows has neither core dumps nor ptrace; its equivalents are crash dumps (Windows Error Reporting)
  and OpenProcess by another process. So: SetErrorMode keeps WER from showing a crash dialog, WerSetFlags
  with NOHEAP keeps the heap (where tokens live) out of any crash report, and the process gets a protected
  DACL that lets the user's other processes only see, wait for and end it, not read or write its memory
  or inject a thread (PROCESS_VM_READ, PROCESS_VM_WRITE, PROCESS_CREATE_THREAD are not granted). The
  user owns the process and so keeps WRITE_DAC: like PR_SET_DUMPABLE against a process running as the
  same user with more privilege, it is a barrier against casual reading (Task Manager's "Create dump
  file", a careless tool), not against malware that already runs as the user.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_DUMPABLE = 4

# Windows: SetErrorMode flags, WerSetFlags flag, process access rights.
SEM_FAILCRITICALERRORS = 0x0001
SEM_NOGPFAULTERRORBOX = 0x0002
WER_FAULT_REPORTING_FLAG_NOHEAP = 0x0001
PROCESS_TERMINATE = 0x0001
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
SYNCHRONIZE = 0x00100000
PROCESS_ALL_ACCESS = 0x001FFFFF
# What the user's other processes may do to the daemon: see it, wait for it, end it (`taskkill` works).
USER_PROCESS_RIGHTS = PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | PROCESS_TERMINATE
_SYSTEM_SID = "S-1-5-18"


def process_dacl_sddl(user_sid: str) -> str:
    """The daemon process's protected DACL on Windows: the user gets USER_PROCESS_RIGHTS, SYSTEM all."""
    return f"D:P(A;;0x{USER_PROCESS_RIGHTS:x};;;{user_sid})(A;;0x{PROCESS_ALL_ACCESS:x};;;{_SYSTEM_SID})"


def error_mode() -> int:
    """SetErrorMode's argument: no critical-error or GP-fault dialogs (nobody is there to click them)."""
    return SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX


def raise_fd_limit(wanted: int = 8192) -> None:
    """Room for many idle clients: the soft open-files limit is often 1,024 (Windows has no such limit)."""
    if sys.platform == "win32":
        return
    import resource

    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        log.warning("could not raise the open-files limit")


def harden_process() -> None:
    """Best effort; logs what could not be done."""
    if sys.platform == "win32":
        _harden_windows()
        return
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        log.warning("could not disable core dumps")
    if sys.platform.startswith("linux"):
        try:
            # The process's own symbols: libc is loaded already, and find_library("c") would run ldconfig
            # in a subprocess on every daemon start (which the first kubectl waits for).
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_DUMPABLE, 0) failed")
        except OSError:
            log.warning("could not load libc to disable ptrace access")


def _harden_windows() -> None:
    if sys.platform != "win32":
        return
    from ctypes import wintypes as w

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    k32.SetErrorMode(w.UINT(error_mode()))
    try:
        wer = ctypes.WinDLL("wer", use_last_error=True)
        if wer.WerSetFlags(w.DWORD(WER_FAULT_REPORTING_FLAG_NOHEAP)) != 0:  # an HRESULT: 0 is S_OK
            log.warning("WerSetFlags(NOHEAP) failed; a crash report could include the heap")
    except (OSError, AttributeError, ctypes.ArgumentError):
        log.warning("could not keep the heap out of crash reports (wer.dll)")
    try:
        _protect_process(k32)
    except Exception as exc:  # best effort, and not yet run on Windows: never keep the daemon from starting
        log.warning("could not restrict access to the daemon process: %s", exc)


def _protect_process(k32: Any) -> None:
    if sys.platform != "win32":
        return
    from shim import winpipe

    a32 = ctypes.WinDLL("advapi32", use_last_error=True)
    sd, dacl = ctypes.c_void_p(), ctypes.c_void_p()
    present, defaulted = ctypes.c_int(), ctypes.c_int()
    sddl = process_dacl_sddl(winpipe.api().process_sid())
    if not a32.ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, 1, ctypes.byref(sd), None):
        raise ctypes.WinError(ctypes.get_last_error())
    try:
        if not a32.GetSecurityDescriptorDacl(sd, ctypes.byref(present), ctypes.byref(dacl), ctypes.byref(defaulted)):
            raise ctypes.WinError(ctypes.get_last_error())
        se_kernel_object, dacl_info, protected = 6, 0x4, 0x80000000
        code = a32.SetSecurityInfo(ctypes.c_void_p(k32.GetCurrentProcess()), se_kernel_object,
                                   ctypes.c_uint32(dacl_info | protected), None, None, dacl, None)
        if code:
            raise ctypes.WinError(code)
    finally:
        k32.LocalFree(sd)
