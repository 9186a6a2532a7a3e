"""A hostile identity provider's words reach the person through the real shim and kubectl without one
escape sequence, control character or bidi override."""

from __future__ import annotations

import pytest

from tests.support.rig import Rig

pytestmark = pytest.mark.e2e


def test_a_hostile_device_code_answer_and_error_reach_kubectls_stderr_clean(rig: Rig) -> None:
    rig.write_kubeconfig("devicecode")
    rig.authority.fail_next("/devicecode", 200, body={
        "device_code": "dc", "user_code": "AB\x1b[8mCD", "verification_uri": "https://x.test/device",
        "expires_in": 900, "interval": 1,
        "message": "\x1b]0;owned\x07\x1b[2J\x1b[3JTo sign in, open https://x.test/device\u202e and enter AB\x9b8mCD.",
    })
    rig.authority.fail_next("/token", 400, body={
        "error": "invalid_grant", "error_codes": [70000],
        "error_description": "AADSTS70000: \x1b]8;;https://evil.test/\x1b\\The grant\x1b]8;;\x1b\\ is bad\u202e\r\nx",
    })
    proc = rig.kubectl("get", "pods")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "kubetray: To sign in, open https://x.test/device and enter ABCD." in stderr, stderr
    assert "The grant is bad" in stderr, stderr
    bad = [c for c in stderr if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066"]
    assert not bad, [hex(ord(c)) for c in bad]
    log = rig.daemon_log()
    assert "\x1b" not in log and "\u202e" not in log
