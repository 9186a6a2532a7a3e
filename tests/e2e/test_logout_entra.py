"""Logout of an Entra profile: the local copy goes, and the person learns how to revoke sessions centrally
(Entra ID has no RFC 7009 revocation endpoint)."""

from __future__ import annotations

import json

import pytest

from tests.support.rig import Rig

pytestmark = pytest.mark.e2e


def test_entra_logout_deletes_locally_and_says_how_to_revoke_sessions(rig: Rig) -> None:
    assert rig.kubectl("get", "pods").returncode == 0
    proc = rig.kubetray("logout", "--all")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "its tokens are gone from the keyring and the daemon" in out
    assert "Revoke-MgUserSignInSession" in out and "Revoke sessions" in out
    (reply,) = json.loads(rig.kubetray("logout", "--all", "--json").stdout)
    assert "Revoke-MgUserSignInSession" in reply["note"]
    after = rig.kubectl("get", "pods")  # signed out on purpose: no automatic sign-in, no silent refresh
    assert after.returncode != 0 and b"kubetray login" in after.stderr
    assert rig.kubetray("login", "--context", "aks").returncode == 0
    assert rig.authority.counts["sign_ins"] == 2  # the refresh token was gone: a new sign-in
    assert rig.kubectl("get", "pods").returncode == 0
