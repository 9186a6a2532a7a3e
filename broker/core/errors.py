"""One tree of errors with stable codes.

Every error the broker reports to a caller is a :class:`KubetrayError`. Its ``code`` is part of the
wire protocol (docs/protocol.md) and never changes meaning; its ``message`` is one plain sentence that
says what happened and what to do. Messages never contain token material.
"""

from __future__ import annotations

import logging
import os


class KubetrayError(Exception):
    """Base of every error the broker reports. ``code`` is stable; ``message`` is for people."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(KubetrayError):
    """The request could not be understood (framing, JSON, fields)."""

    code = "bad_request"


class UnsupportedVersion(KubetrayError):
    """The client speaks a protocol version the daemon does not."""

    code = "unsupported_version"


class InvalidArguments(KubetrayError):
    """The get-token arguments (from the kubeconfig) are wrong."""

    code = "invalid_arguments"


class LoginRequired(KubetrayError):
    """No usable token and no sign-in may start for this caller; the message says how to sign in."""

    code = "login_required"


class LoginFailed(KubetrayError):
    """A sign-in was started but did not complete (abandoned, timed out, declined)."""

    code = "login_failed"


class AuthError(KubetrayError):
    """The identity provider refused a request. Carries the provider's own code and correlation id."""

    code = "auth_error"

    def __init__(
        self,
        message: str,
        *,
        error: str = "",
        description: str = "",
        error_codes: tuple[int, ...] = (),
        correlation_id: str = "",
    ) -> None:
        super().__init__(message)
        self.error = error
        self.description = description
        self.error_codes = error_codes
        self.correlation_id = correlation_id


class ProviderUnreachable(KubetrayError):
    """The identity provider could not be reached (network, TLS, timeout)."""

    code = "provider_unreachable"


class StoreUnavailable(KubetrayError):
    """The OS keyring is missing or locked; the broker refuses rather than store secrets in plaintext."""

    code = "store_unavailable"


class Busy(KubetrayError):
    """The daemon is at its connection limit."""

    code = "busy"


class Timeout(KubetrayError):
    """The request took longer than the caller allowed."""

    code = "timeout"


class InsecureRuntimeDir(KubetrayError):
    """The socket directory has the wrong owner or mode."""

    code = "insecure_runtime_dir"


class Forbidden(KubetrayError):
    """The caller is not the user the daemon serves."""

    code = "forbidden"


class LocalOnly(KubetrayError):
    """A caller forwarded from another machine (ssh) asked for a profile marked local-only."""

    code = "local_only"


def error_id() -> str:
    """A short random id that ties a message a person sees to the log record with the traceback."""
    return os.urandom(3).hex()  # not `secrets`: its import (hmac, base64) is on the first call's path


def unexpected(log: logging.Logger, exc: BaseException, what: str) -> KubetrayError:
    """Log an exception nobody anticipated ONCE, with its traceback, and return the error to report.

    The message names only the exception's type (its text is not ours to vouch for) and the id under
    which the log has the rest: "… (kubetray error id 3f2a9c; see the log)".
    """
    ident = error_id()
    log.error("%s [kubetray error id %s]", what, ident, exc_info=(type(exc), exc, exc.__traceback__))
    return KubetrayError(f"{what} ({type(exc).__name__}; kubetray error id {ident}; see the log)")
