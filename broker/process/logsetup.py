"""Logging to a rotated file in the user log dir, with anything token-shaped redacted."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re

from shim.text import printable

# JWTs (three base64url parts, the first starting with eyJ) and values of secret-bearing fields.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# Field names in OAuth's snake_case, kubeconfig's and kubelogin's hyphenated spelling alike.
_NAMES = (
    r"(?:access|refresh|id)[_-]token|client[_-]secret|(?:client[_-]certificate[_-])?password|code|device[_-]code"
    r"|(?:client[_-])?assertion|client[_-]key[_-]data"
)
# name: value, name=value, "name": "value", and a flag's value: --client-secret value / --client-secret=value.
_FIELDS = re.compile(
    rf"""(?i)((?:--(?:oidc-)?(?:{_NAMES})(?:[=\s]+|["']?\s*,\s*)["']?)"""
    rf"""|(?:["']?(?<![A-Za-z_-])(?:{_NAMES})["']?\s*[:=]\s*["']?))([^"'&\s,}}\]]+)"""
)
# Environment-style NAME=VALUE (or "NAME": "VALUE") for names ending in SECRET, PASSWORD, TOKEN or KEY.
_ENV = re.compile(
    r"""((?<![A-Za-z0-9_])["']?[A-Z][A-Z0-9_]*(?:SECRET|PASSWORD|TOKEN|KEY)["']?\s*[:=]\s*["']?)([^"'&\s,}\]]+)"""
)


def redact(text: str) -> str:
    """Remove token material from a log line."""
    text = _JWT.sub("[redacted-jwt]", text)
    return _ENV.sub(r"\1[redacted]", _FIELDS.sub(r"\1[redacted]", text))


class RedactingFormatter(logging.Formatter):
    """Formats a record with token material redacted and terminal control stripped (lines are kept)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(redact(super().format(record)), keep_newlines=True)


def configure(log_dir: str, *, level: int = logging.INFO) -> str:
    """Log to ``<log_dir>/kubetray.log`` (1 MiB × 3). Returns the log file's path."""
    os.makedirs(log_dir, mode=0o700, exist_ok=True)
    path = os.path.join(log_dir, "kubetray.log")
    formatter = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: logging.Handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1 << 20, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # MSAL logs request details at DEBUG/INFO; keep it to warnings.
    logging.getLogger("msal").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return path


def log_to_stderr() -> None:
    """Also log to stderr (``kubetray run`` in a terminal), once the start-up checks have passed."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
