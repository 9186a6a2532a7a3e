"""The named-pipe transport's pure pieces: pipe names, the DACL (built and read back), flags, messages,
the shim's server-SID check. The Win32 calls themselves cannot run here; that they refuse to is tested."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from broker.ipc import windows_pipe as wp
from shim import winpipe

SID = "S-1-5-21-3623811015-3361044348-30300820-1013"
OTHER = "S-1-5-21-3623811015-3361044348-30300820-1014"
NAME = "\\\\.\\pipe\\kubetray-" + SID


def test_pipe_name_is_per_user() -> None:
    assert winpipe.pipe_name(SID) == NAME
    assert winpipe.pipe_name(SID) != winpipe.pipe_name(OTHER)


@pytest.mark.parametrize(
    "bad",
    ["", "S-1", "S-1-5-", "s-1-5-18", "S-2-5-18", "S-1-5-21-1)(A;;GA;;;WD", "S-1-5-21-\uff11", "S-1-5-18\\..\\x"],
)
def test_only_string_sids_make_pipe_names_and_dacls(bad: str) -> None:
    # The SID is pasted into the pipe name and the SDDL: anything else would be an injection.
    with pytest.raises(ValueError):
        winpipe.pipe_name(bad)
    with pytest.raises(ValueError):
        wp.dacl_sddl(bad)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("C:\\Users\\me\\AppData\\Local\\kubetray\\kubetray\\Temp\\kubetray.sock", NAME),
        ("\\\\.\\pipe\\kubetray-test-42", "\\\\.\\pipe\\kubetray-test-42"),  # an override naming a pipe
        ("\\\\.\\PIPE\\other", "\\\\.\\PIPE\\other"),
        ("\\\\.\\pipe\\", NAME),  # the bare prefix names nothing
    ],
)
def test_resolve_pipe_name(path: str, expected: str) -> None:
    assert winpipe.resolve_pipe_name(path, SID) == expected


def test_flag_values_are_the_win32_ones() -> None:
    # A wrong constant would fail silently on Windows (e.g. a pipe open to the network), so pin them.
    assert wp.FILE_FLAG_FIRST_PIPE_INSTANCE == 0x00080000
    assert wp.PIPE_REJECT_REMOTE_CLIENTS == 0x00000008
    assert wp.PIPE_ACCESS_DUPLEX == 0x00000003
    assert winpipe.CLIENT_FLAGS == 0x00110000  # SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION
    assert winpipe.CLIENT_ACCESS == 0xC0000000


def test_open_mode_claims_the_name_only_for_the_first_instance() -> None:
    first, later = wp.open_mode(True), wp.open_mode(False)
    assert first & wp.FILE_FLAG_FIRST_PIPE_INSTANCE
    assert not later & wp.FILE_FLAG_FIRST_PIPE_INSTANCE
    for mode in (first, later):
        assert mode & 0x3 == wp.PIPE_ACCESS_DUPLEX and mode & wp.FILE_FLAG_OVERLAPPED


def test_pipe_mode_is_a_local_byte_stream() -> None:
    mode = wp.pipe_mode()
    assert mode & wp.PIPE_REJECT_REMOTE_CLIENTS
    assert mode & 0x4 == 0 and mode & 0x2 == 0 and mode & 0x1 == 0  # byte type, byte read mode, blocking


def test_dacl_names_only_the_user() -> None:
    assert wp.dacl_sddl(SID) == f"D:P(A;;GA;;;{SID})"
    assert wp.dacl_problem(wp.dacl_sddl(SID), SID) is None


def test_parse_dacl_reads_a_full_descriptor() -> None:
    sddl = f"O:{SID}G:{SID}D:PAI(A;;FA;;;{SID})S:(ML;;NW;;;LW)"
    flags, aces = wp.parse_dacl(sddl)
    assert flags == {"P", "AI"}
    assert aces == [wp.Ace("A", "", "FA", "", "", SID)]


@pytest.mark.parametrize(
    "read_back",
    [f"D:P(A;;FA;;;{SID})", f"D:PAI(A;;0x1f01ff;;;{SID})", f"D:P(A;;GA;;;{SID.lower()})", f"O:BAD:P(A;;FA;;;{SID})"],
)
def test_the_read_back_forms_of_our_dacl_pass(read_back: str) -> None:
    # The pipe file system maps GENERIC_ALL to FILE_ALL_ACCESS, so the read-back says FA, not GA.
    assert wp.dacl_problem(read_back, SID) is None


def test_an_alias_for_a_well_known_sid_passes() -> None:
    assert wp.dacl_problem("D:P(A;;FA;;;SY)", "S-1-5-18") is None


@pytest.mark.parametrize(
    ("read_back", "why"),
    [
        (f"D:(A;;FA;;;{SID})", "not protected"),
        (f"D:PNO_ACCESS_CONTROL(A;;FA;;;{SID})", "not protected"),
        (f"D:P(A;;FA;;;{SID})(A;;GR;;;WD)", "2 entries"),
        ("D:P", "0 entries"),
        (f"D:P(A;;FA;;;{OTHER})", "names"),
        ("D:P(A;;FA;;;SY)", "names"),
        (f"D:P(D;;FA;;;{SID})", "plain allow"),
        (f"D:P(A;CI;FA;;;{SID})", "plain allow"),
        (f"D:P(A;;GR;;;{SID})", "grants GR"),
        (f"D:P(A;;FA;;;{SID}", "malformed"),
        (f"D:P(A;;FA;;{SID})", "malformed"),
        (f"D:PX(A;;FA;;;{SID})", "unknown DACL flags"),
        (f"O:{SID}", "no DACL"),
    ],
)
def test_any_other_dacl_is_refused_with_the_reason(read_back: str, why: str) -> None:
    problem = wp.dacl_problem(read_back, SID)
    assert problem is not None and why in problem


def test_a_squatter_on_the_name_is_one_clear_line() -> None:
    for code in (winpipe.ERROR_ACCESS_DENIED, winpipe.ERROR_PIPE_BUSY):
        message = wp.create_error_message(code, NAME)
        assert "another process already holds the pipe name" in message and NAME in message
        assert "\n" not in message
        assert wp.refuse_start(code, NAME).message == message
    assert "not valid" in wp.create_error_message(wp.ERROR_INVALID_NAME, NAME)
    assert "Windows error 1450" in wp.create_error_message(1450, NAME)


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (winpipe.ERROR_FILE_NOT_FOUND, FileNotFoundError, "no kubetray daemon"),  # shim.main starts one
        (winpipe.ERROR_ACCESS_DENIED, PermissionError, "another user"),
        (winpipe.ERROR_PIPE_BUSY, TimeoutError, "busy"),
        (winpipe.ERROR_SEM_TIMEOUT, TimeoutError, "busy"),
        (87, OSError, "Windows error 87"),
    ],
)
def test_connect_errors_map_to_what_the_shim_acts_on(code: int, kind: type[OSError], words: str) -> None:
    exc = winpipe.connect_error(code, NAME)
    assert type(exc) is kind
    assert words in str(exc) and str(exc) == exc.strerror and "\n" not in str(exc)


def test_io_errors_after_connecting() -> None:
    for code in (winpipe.ERROR_BROKEN_PIPE, winpipe.ERROR_NO_DATA, winpipe.ERROR_PIPE_NOT_CONNECTED):
        assert isinstance(winpipe.io_error(code), BrokenPipeError)
    assert type(winpipe.io_error(1)) is OSError


def test_shim_accepts_only_a_server_of_its_own_user() -> None:
    winpipe.check_server_sid(SID, SID, NAME)
    winpipe.check_server_sid(SID.lower(), SID, NAME)
    with pytest.raises(PermissionError, match=OTHER):
        winpipe.check_server_sid(OTHER, SID, NAME)


@pytest.mark.skipif(sys.platform == "win32", reason="tests the refusal off Windows")
def test_win32_pieces_refuse_to_load_elsewhere() -> None:
    with pytest.raises(OSError, match="only on Windows"):
        winpipe.api()
    with pytest.raises(OSError, match="only on Windows"):
        winpipe.connect(NAME)
    with pytest.raises(OSError, match="only on Windows"):
        wp.PipeServer(NAME, SID, lambda line, send: pytest.fail("dispatched"))


def test_shim_winpipe_imports_nothing_of_the_broker() -> None:
    code = "import sys, shim.winpipe; print(sorted(m for m in sys.modules if m.split('.')[0] == 'broker'))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"
