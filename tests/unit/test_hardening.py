"""Process hardening: what each OS gets (the Windows calls cannot run here; their inputs are checked)."""

from __future__ import annotations

import sys

import pytest

from broker.ipc import windows_pipe
from broker.process import hardening

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"


def test_the_windows_process_dacl_is_protected_and_grants_others_no_memory_access() -> None:
    flags, aces = windows_pipe.parse_dacl(hardening.process_dacl_sddl(SID))
    assert "P" in flags  # nothing inherited
    rights = {ace.sid: int(ace.rights, 16) for ace in aces}
    assert set(rights) == {SID, "S-1-5-18"}
    user = rights[SID]
    process_vm_read, process_vm_write, process_create_thread, process_dup_handle = 0x10, 0x20, 0x2, 0x40
    for right in (process_vm_read, process_vm_write, process_create_thread, process_dup_handle):
        assert not user & right
    assert user & hardening.PROCESS_TERMINATE  # `taskkill` of one's own daemon still works
    assert user & hardening.SYNCHRONIZE  # and waiting for it to exit
    assert all(ace.type == "A" and not ace.flags for ace in aces)


def test_no_crash_dialog_on_windows() -> None:
    assert hardening.error_mode() == hardening.SEM_FAILCRITICALERRORS | hardening.SEM_NOGPFAULTERRORBOX


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_DUMPABLE is Linux's")
def test_on_linux_the_daemon_is_not_dumpable_and_writes_no_core() -> None:
    import subprocess

    code = ("import ctypes, resource\n"
            "from broker.process import hardening\n"
            "hardening.harden_process()\n"
            "print(resource.getrlimit(resource.RLIMIT_CORE))\n"
            "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n")  # 3 = PR_GET_DUMPABLE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.splitlines() == ["(0, 0)", "0"]
