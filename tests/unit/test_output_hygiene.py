"""Provider text loses every escape sequence, control character and bidi override before anyone sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from broker.sources import _errors
from shim.text import printable

REPO = Path(__file__).resolve().parents[2]

HOSTILE = [
    ("\x1b[2J\x1b[1;1HTo sign in", "To sign in"),  # CSI: clear the screen, move the cursor
    ("\x1b]0;pwned\x07code", "code"),  # OSC window title ended by BEL
    ("\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 hyperlink ended by ST
    ("\x1bP+q544e\x1b\\ok", "ok"),  # DCS (terminal query) ended by ST
    ("\x1b_apc\x1b\\ok", "ok"),  # APC
    ("\x9b31mred\x9b0m", "red"),  # 8-bit CSI
    ("\x9d0;title\x9cok", "ok"),  # 8-bit OSC ended by 8-bit ST
    ("a\x1b7b\x1b8c\x1b(Bd", "abcd"),  # two-character escapes, with and without an intermediate
    ("bell\x07back\x08space\x7fdel\x00nul", "bellbackspacedelnul"),  # C0 and DEL
    ("user\u202egnp.exe", "usergnp.exe"),  # RIGHT-TO-LEFT OVERRIDE
    ("\u2066iso\u2069\u200elrm\u200frlm\u061c", "isolrmrlm"),  # isolates and direction marks
    ("line one\r\nline two\ttab\u2028sep", "line one  line two tab sep"),
    ("lone \udc80 surrogate", "lone \ufffd surrogate"),
    ("unterminated \x1b]0;title", "unterminated "),
    ("trailing escape \x1b", "trailing escape "),
    ("Ünïcödé 日本語 مرحبا — kept", "Ünïcödé 日本語 مرحبا — kept"),
]


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_printable_strips_what_a_terminal_would_obey(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_newlines_may_be_kept_for_multi_line_records() -> None:
    assert printable("a\x1b[31m\nb\r\n", keep_newlines=True) == "a\nb \n"


def test_nothing_printable_ever_holds_a_control_character() -> None:
    every = "".join(chr(c) for c in range(0x00, 0x2100)) + "\u202a\u202b\u202c\u202d\u202e\u2066\u2069"
    cleaned = printable(every)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in cleaned)
    assert not set(cleaned) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def test_a_hostile_error_description_becomes_one_clean_line() -> None:
    error = _errors.from_result({
        "error": "invalid_grant\x1b[0m",
        "error_description": "AADSTS70000: \x1b[2J\x1b]0;pwned\x07The grant is bad\u202e\r\nTrace ID: 1",
        "error_codes": [70000],
        "correlation_id": "c0ffee\x1b[8m",
    }, during_sign_in=True)
    assert "\x1b" not in error.message and "\u202e" not in error.message and "\n" not in error.message
    assert "The grant is bad" in error.message and "Trace ID" not in error.message


def _shim_reply(lines: list[bytes]) -> subprocess.CompletedProcess[bytes]:
    """The shim's reply loop fed ``lines`` from a socket pair, in a fresh interpreter (its real stderr)."""
    code = (
        "import socket, sys\n"
        "from shim import main\n"
        "a, b = socket.socketpair()\n"
        f"b.sendall(b''.join({lines!r}))\n"
        "b.shutdown(socket.SHUT_WR)\n"
        "sys.exit(main.exchange(a, b''))\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=30)


def test_the_shim_strips_progress_and_error_lines_before_they_reach_the_terminal() -> None:
    progress = json.dumps({"type": "progress", "message": "\x1b]0;owned\x07open \x1b[31mhttps://x.test\u202e"})
    error = json.dumps({"type": "error", "code": "auth_error", "message": "refused \x1b[2J\x9b1mnow"})
    proc = _shim_reply([progress.encode() + b"\n", error.encode() + b"\n"])
    assert proc.returncode == 1
    assert proc.stderr.decode() == "open https://x.test\nkubetray: refused now\n"


def test_the_shim_fast_path_never_loads_the_text_cleaner() -> None:
    code = (
        "import socket, sys\n"
        "from shim import main, wire\n"
        "a, b = socket.socketpair()\n"
        "b.sendall(wire.CREDENTIAL_PREFIX + b'{\"kind\":\"ExecCredential\"}\\n')\n"
        "status = main.exchange(a, b'')\n"
        "print(status, 'shim.text' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.stdout.splitlines()[-1] == "0 False", proc.stdout + proc.stderr


def test_status_and_whoami_text_from_kubeconfigs_and_tokens_reaches_the_terminal_clean(
        capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import manage

    hostile = "prod\x1b]0;owned\x07\x1b[2J\u202eevil"
    manage._print_status({"pid": 1, "version": "x", "socket": "/s", "keyring": "k", "profiles": [
        {"key": "abc", "state": "ok", "account": hostile, "tenant_id": "t", "login": "interactive",
         "authority": "https://a/b", "contexts": [hostile], "expires_on": None, "last_refresh": None,
         "last_error": hostile}],
        "remote": {"recent": [{"at": 0, "origin": hostile, "via": "ssh", "profile": "abc", "refused": False}]}})
    manage._print_result({"type": "signed_out", "key": "abc", "note": hostile})
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert out.count("prodevil") == 5  # the words are still there
    assert "\nabc  ok\n" in out  # the layout's own line breaks are kept
