"""Identity-provider errors become one plain sentence with the fix; unknown ones keep the provider's ids."""

from __future__ import annotations

import pytest

from broker.core.errors import AuthError, LoginFailed, LoginRequired
from broker.sources import _errors, catalogue

CORRELATION = "c0ffee00-0000-4000-8000-000000000042"


@pytest.mark.parametrize(("code", "words"), [
    (50076, "multi-factor"), (50079, "register for multi-factor"), (53003, "Conditional Access"),
    (50158, "Conditional Access"), (700082, "not used for a long time"), (50173, "password changed"),
    (65001, "consent"), (50020, "not a member"), (50034, "does not exist"), (7000215, "client secret is wrong"),
    (7000222, "client secret has expired"), (700016, "client id is not an application"),
    (90002, "tenant does not exist"),
])
def test_each_entra_code_has_a_sentence_and_a_fix(code: int, words: str) -> None:
    line = catalogue.describe("invalid_grant", (), f"AADSTS{code}: provider text.\r\nTrace ID: x", CORRELATION)
    assert words in line
    assert f"AADSTS{code}" in line and CORRELATION in line
    assert "; " in line and "\n" not in line and "Trace ID" not in line


@pytest.mark.parametrize(("error", "words"), [
    ("expired_token", "device code expired"), ("access_denied", "cancelled or declined"), ("slow_down", "poll"),
])
def test_device_flow_errors_are_explained(error: str, words: str) -> None:
    assert words in catalogue.describe(error)


def test_an_unknown_error_shows_the_providers_code_description_and_correlation_id() -> None:
    line = catalogue.describe("invalid_request", [9999999], "AADSTS9999999: Something new.\r\nTrace ID: t",
                              CORRELATION)
    assert line == f"the identity provider refused: invalid_request: AADSTS9999999: Something new. " \
                   f"(correlation id {CORRELATION})"


def test_the_daemon_uses_the_catalogue_and_keeps_its_error_classes() -> None:
    mfa = _errors.from_result({"error": "interaction_required", "error_codes": [50076],
                               "error_description": "AADSTS50076: Due to a configuration change…"})
    assert isinstance(mfa, LoginRequired) and "multi-factor" in mfa.message
    secret = _errors.from_result({"error": "invalid_client", "error_codes": [7000222],
                                  "error_description": "AADSTS7000222: expired", "correlation_id": CORRELATION})
    assert isinstance(secret, AuthError) and "client secret has expired" in secret.message
    assert secret.correlation_id == CORRELATION
    expired = _errors.from_result({"error": "expired_token"}, during_sign_in=True)
    assert isinstance(expired, LoginFailed) and "device code expired" in expired.message
