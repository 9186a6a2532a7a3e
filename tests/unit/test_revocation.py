"""RFC 7009 revocation at logout, against a fake HTTP session (the real provider: tests/e2e/test_oidc_revocation.py)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from broker.sources import _revocation

ISSUER = "https://idp.example.test/oidc"
RT = "rt-secret-value-123"


class Reply:
    def __init__(self, status: int, doc: Any = None) -> None:
        self.status_code, self._doc = status, doc

    def json(self) -> Any:
        if self._doc is None:
            raise ValueError("not json")
        return self._doc


class FakeHttp:
    def __init__(self, discovery: Reply, revocation: Reply | Exception | None = None) -> None:
        self.discovery, self.revocation = discovery, revocation or Reply(200)
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def get(self, url: str, **kwargs: Any) -> Reply:
        assert url == ISSUER + "/.well-known/openid-configuration"
        return self.discovery

    def post(self, url: str, **kwargs: Any) -> Reply:
        self.posts.append((url, kwargs))
        if isinstance(self.revocation, Exception):
            raise self.revocation
        return self.revocation


DISCOVERY = Reply(200, {"issuer": ISSUER, "revocation_endpoint": ISSUER + "/token/revocation"})


def test_a_public_client_names_itself_in_the_body() -> None:
    http = FakeHttp(DISCOVERY)
    note = _revocation.revoke(http, ISSUER, "native", "", [RT])
    assert note == f"revoked the refresh token at {ISSUER}"
    ((url, kwargs),) = http.posts
    assert url == ISSUER + "/token/revocation"
    assert kwargs["data"] == {"token": RT, "token_type_hint": "refresh_token", "client_id": "native"}
    assert "Authorization" not in kwargs["headers"]


def test_a_confidential_client_uses_basic_auth_like_msal_at_the_token_endpoint() -> None:
    http = FakeHttp(DISCOVERY)
    _revocation.revoke(http, ISSUER, "app id", "s3cr:t", [RT])
    ((_, kwargs),) = http.posts
    assert "client_id" not in kwargs["data"]
    assert kwargs["headers"]["Authorization"] == "Basic " + base64.b64encode(b"app+id:s3cr%3At").decode()


@pytest.mark.parametrize(("http", "expected"), [
    (FakeHttp(Reply(200, {"issuer": ISSUER})), "offers no revocation endpoint"),
    (FakeHttp(Reply(200, {"revocation_endpoint": "http://idp.example.test/revoke"})), "not https"),
    (FakeHttp(Reply(503)), "discovery failed (discovery answered HTTP 503)"),
    (FakeHttp(DISCOVERY, Reply(401, {"error": "invalid_client", "error_description": RT})),
     "(HTTP 401 invalid_client)"),
    (FakeHttp(DISCOVERY, ConnectionError("refused")), "(ConnectionError)"),
])
def test_every_failure_is_one_sentence_that_keeps_the_local_deletion_and_no_token(http: FakeHttp,
                                                                                  expected: str) -> None:
    note = _revocation.revoke(http, ISSUER, "native", "", [RT])
    assert expected in note
    assert "deleted here" in note
    assert RT not in note


def test_nothing_to_revoke_says_nothing() -> None:
    assert _revocation.revoke(FakeHttp(DISCOVERY), ISSUER, "native", "", []) == ""


def test_the_entra_note_says_how_to_revoke_sessions_centrally() -> None:
    assert "Revoke-MgUserSignInSession" in _revocation.ENTRA_NOTE
    assert "Revoke sessions" in _revocation.ENTRA_NOTE
