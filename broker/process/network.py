"""The daemon's own network defaults (proxy and CA variables): one rule, shown by `kubetray status`.

The rule: the daemon's defaults are the proxy/CA variables of the environment it started in — the
login session for autostart and `kubetray run`; for a daemon a shim started, that kubectl's, filtered
through the shim's allowlist (shim/spawn.py NETWORK). They never change while it runs. A kubeconfig's
per-call values (its user entry's exec.env) travel with its requests and apply to that profile only.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from shim import spawn

RULE = "the environment the daemon started in (kubeconfig exec.env values apply per call)"


def redact(value: str) -> str:
    """A proxy URL without its user and password (``http://***@proxy:3128``); other values unchanged."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return "***"
    if parts.username is None and parts.password is None:
        return value
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def defaults(environ: Mapping[str, str]) -> dict[str, object]:
    """What `kubetray status` shows: the rule, and each proxy/CA variable set (proxy credentials hidden)."""
    values = {name: redact(environ[name]) for name in sorted(spawn.NETWORK) if environ.get(name)}
    return {"source": RULE, "variables": values}
