"""MSAL results become plain one-line errors; logs never keep token material."""

from __future__ import annotations

import logging

import requests

from broker.core.errors import AuthError, LoginFailed, LoginRequired, ProviderUnreachable
from broker.process.logsetup import RedactingFormatter, redact
from broker.sources import _errors

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz"


def test_revoked_refresh_token_means_sign_in_again() -> None:
    err = _errors.from_result({
        "error": "invalid_grant",
        "error_description": "AADSTS50173: The provided grant has expired due to it being revoked.\r\nTrace ID: x",
        "error_codes": [50173],
    })
    assert isinstance(err, LoginRequired)
    assert "AADSTS50173" in err.message and "kubetray login" in err.message
    assert "\n" not in err.message and "Trace ID" not in err.message


def test_unknown_provider_errors_keep_code_description_and_correlation_id() -> None:
    err = _errors.from_result({
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.",
        "error_codes": [7000215],
        "correlation_id": "c0ffee00-0000-4000-8000-000000000001",
    })
    assert isinstance(err, AuthError)
    assert err.error_codes == (7000215,)
    assert "invalid_client" in err.message and "c0ffee00-0000-4000-8000-000000000001" in err.message


def test_declined_device_code_is_a_failed_sign_in() -> None:
    assert isinstance(_errors.from_result({"error": "authorization_declined"}, during_sign_in=True), LoginFailed)


def test_network_failures_name_the_fix() -> None:
    err = _errors.from_exception(requests.exceptions.SSLError("bad cert"), "https://login.example.test/t")
    assert isinstance(err, ProviderUnreachable) and "REQUESTS_CA_BUNDLE" in err.message
    err = _errors.from_exception(requests.exceptions.ConnectionError("refused"), "https://login.example.test/t")
    assert "HTTPS_PROXY" in err.message


def test_redaction_removes_jwts_and_secret_fields() -> None:
    line = f'got {JWT} and {{"refresh_token": "1.T.abcDEF-123", "error_codes": [50173], "code": "0.AAA"}}'
    out = redact(line)
    assert JWT not in out and "1.T.abcDEF-123" not in out and "0.AAA" not in out
    assert "50173" in out  # error codes are not secrets


def test_the_log_formatter_redacts_arguments_too() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (JWT,), None)
    assert JWT not in RedactingFormatter("%(message)s").format(record)
