"""Logging to a rotated file in the user log dir, with anything token-shaped redacted."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re

# JWTs (three base64url parts, the first starting with eyJ) and values of secret-bearing fields.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_FIELDS = re.compile(
    r"""(?i)(["']?(?<![A-Za-z_])(?:access_token|refresh_token|id_token|client_secret|password|code|device_code|assertion)"""
    r"""["']?\s*[:=]\s*["']?)([^"'&\s,}]+)"""
)


def redact(text: str) -> str:
    """Remove token material from a log line."""
    return _FIELDS.sub(r"\1[redacted]", _JWT.sub("[redacted-jwt]", text))


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


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
