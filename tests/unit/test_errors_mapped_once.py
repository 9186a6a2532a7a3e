"""Errors mapped once: MSAL/requests exceptions become ours with the cause kept; the unexpected is logged
once with an id the person also sees; one function turns an MSAL result into a Token."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, cast

import pytest
import requests

from broker.core.errors import AuthError, KubetrayError, LoginRequired, ProviderUnreachable
from broker.core.service import TokenService
from broker.ipc.handler import Handler
from broker.sources import _errors
from tests.support.fakes import FakeClock, FakeSource, MemoryRegistry, ThreadSubmit, profile

ID = re.compile(r"kubetray error id ([0-9a-f]{6}); see the log")


def logged_ids(caplog: pytest.LogCaptureFixture) -> list[tuple[str, logging.LogRecord]]:
    found = ((re.search(r"kubetray error id ([0-9a-f]{6})", r.getMessage()), r) for r in caplog.records)
    return [(m.group(1), r) for m, r in found if m]


def test_an_unexpected_exception_keeps_its_cause_and_its_id_is_in_the_message_and_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(KubetrayError) as caught, _errors.translating("signing in to https://a.test/t", "https://a.test/t"):
        raise KeyError("internal detail")
    error = caught.value
    assert type(error) is KubetrayError and isinstance(error.__cause__, KeyError)
    match = ID.search(error.message)
    assert match, error.message
    assert "while signing in to https://a.test/t" in error.message and "KeyError" in error.message
    assert "internal detail" not in error.message  # the exception's own words stay in the log
    [(ident, record)] = logged_ids(caplog)  # logged exactly once
    assert ident == match.group(1)
    assert record.exc_info is not None and record.exc_info[1] is error.__cause__


def test_expected_failures_are_mapped_without_an_id_and_keep_their_cause(caplog: pytest.LogCaptureFixture) -> None:
    cause = requests.exceptions.ConnectionError("refused")
    with pytest.raises(ProviderUnreachable) as caught, _errors.translating("refreshing", "https://a.test/t"):
        raise cause
    assert caught.value.__cause__ is cause and "cannot reach https://a.test/t" in caught.value.message
    assert "error id" not in caught.value.message and not logged_ids(caplog)


def test_our_own_errors_pass_through_untouched() -> None:
    mine = LoginRequired("sign in")
    with pytest.raises(LoginRequired) as caught, _errors.translating("refreshing", "https://a.test/t"):
        raise mine
    assert caught.value is mine


def test_the_service_catch_all_logs_with_the_id_it_reports(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()

    class Broken(FakeSource):
        def sign_in(self, profile: Any, context: Any, progress: Any) -> Any:
            raise ZeroDivisionError("adapter bug")

    submit = ThreadSubmit()
    try:
        service = TokenService(source=Broken(clock), clock=clock, submit=submit, registry=MemoryRegistry())
        with pytest.raises(KubetrayError) as caught:
            service.get_token(profile(), person_present=True).result(5)
    finally:
        submit.close()
    match = ID.search(caught.value.message)
    assert match and "ZeroDivisionError" in caught.value.message, caught.value.message
    assert [i for i, _r in logged_ids(caplog)] == [match.group(1)]


def test_the_handler_catch_all_logs_with_the_id_it_replies(caplog: pytest.LogCaptureFixture) -> None:
    handler = Handler(service=cast(Any, None), version="9.9")  # status on no service: an AttributeError
    replies: list[bytes] = []
    asyncio.run(handler.handle(b'{"v":1,"op":"status"}', replies.append))
    [reply] = replies
    body = json.loads(reply)
    match = ID.search(body["message"])
    assert body["code"] == "internal" and match, body
    [(ident, record)] = logged_ids(caplog)
    assert ident == match.group(1) and record.exc_info is not None


# --- one MSAL result → Token ---------------------------------------------------------------------------


def test_a_result_becomes_a_token_counted_from_when_it_was_asked() -> None:
    result = {"access_token": "at", "expires_in": 3599,
              "id_token_claims": {"preferred_username": "alice@x.test", "oid": "o", "tid": "t"}}
    token = _errors.token_from_result(result, 1000.0)
    assert (token.access_token, token.expires_on, token.obtained_at) == ("at", 4599.0, 1000.0)
    assert (token.account, token.home_account_id, token.tenant_id) == ("alice@x.test", "o.t", "t")
    account = {"username": "bob@x.test", "home_account_id": "b.t"}
    assert _errors.token_from_result(result, 0.0, account=account).account == "bob@x.test"
    bare = _errors.token_from_result({"access_token": "a"}, 0.0, fallback_account="svc", tenant_id="t2")
    assert (bare.account, bare.tenant_id) == ("svc", "t2")


@pytest.mark.parametrize(("result", "kind"), [
    (None, AuthError),
    ({"error": "invalid_grant", "error_description": "AADSTS70043: expired"}, LoginRequired),
    ({"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}, AuthError),
])
def test_a_result_without_a_token_is_the_error_it_reports(result: dict[str, Any] | None, kind: type) -> None:
    with pytest.raises(kind):
        _errors.token_from_result(result, 0.0)


# --- instance discovery --------------------------------------------------------------------------------


def _failed(url: str) -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError("refused", request=requests.Request("GET", url).prepare())


def test_an_unreachable_instance_discovery_names_microsofts_host_and_the_flag_for_a_private_authority() -> None:
    exc = _failed("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1")
    message = _errors.from_exception(exc, "https://login.corp.example/tenant").message
    assert message.startswith("cannot reach login.microsoftonline.com for MSAL's instance discovery")
    assert "--disable-instance-discovery" in message and "login.corp.example is not a Microsoft" in message


def test_a_microsoft_authority_is_not_told_to_disable_instance_discovery() -> None:
    exc = _failed("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1")
    message = _errors.from_exception(exc, "https://login.microsoftonline.us/tenant").message
    assert "login.microsoftonline.com" in message and "--disable-instance-discovery" not in message
    assert _errors.is_microsoft_host("contoso.b2clogin.com") and not _errors.is_microsoft_host("b2clogin.com.evil")
