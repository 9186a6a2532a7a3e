"""Turn int128/kubelogin's ``get-token --oidc-…`` arguments into a Profile plus in-memory secrets.

Same flags, same meaning, so an int128 kubeconfig switches by changing ``command:``; both
``oidc-login get-token …`` (the ``kubectl oidc-login`` plugin form) and ``get-token --oidc-…`` are read.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit

from broker.core.errors import InvalidArguments
from broker.core.model import (
    GRANT_AUTHCODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    GRANT_PASSWORD,
    INSECURE_WARNING,
    LOGIN_OIDC,
    Parsed,
    Profile,
    Secrets,
)
from broker.execplugin.goflags import normalise_bools

GRANT_TYPES = (GRANT_AUTHCODE, GRANT_DEVICE_CODE, GRANT_PASSWORD, GRANT_CLIENT_CREDENTIALS)
_BOOL_FLAGS = ("--oidc-use-access-token", "--insecure-skip-tls-verify", "--skip-open-browser", "--force-refresh",
               "--local-only")
# Scopes MSAL adds by itself (and refuses to be given).
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting: the daemon must keep running."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InvalidArguments(f"{message}; see `kubetray-shim --help`")


def _parser() -> _Parser:
    p = _Parser(prog="kubetray-shim get-token", add_help=False, allow_abbrev=False)
    p.add_argument("--oidc-issuer-url", default="")
    p.add_argument("--oidc-client-id", default="")
    p.add_argument("--oidc-client-secret", default="")
    p.add_argument("--oidc-extra-scope", action="append", default=[])
    p.add_argument("--oidc-use-access-token", action="store_true")
    p.add_argument("--grant-type", default="auto")
    p.add_argument("--certificate-authority", action="append", default=[])
    p.add_argument("--certificate-authority-data", action="append", default=[])
    p.add_argument("--insecure-skip-tls-verify", action="store_true")
    p.add_argument("--listen-address", action="append", default=[])
    p.add_argument("--username", default="")
    p.add_argument("--password", default="")
    p.add_argument("--authentication-timeout-sec", type=int, default=180)
    # Accepted so int128 kubeconfigs keep working; the keyring is the store and the daemon opens the browser.
    p.add_argument("--token-cache-storage", default="")
    p.add_argument("--token-cache-dir", default="")
    p.add_argument("--skip-open-browser", action="store_true")
    p.add_argument("--force-refresh", action="store_true")
    p.add_argument("--local-only", action="store_true")  # kubetray's own; see kubelogin_args
    p.add_argument("-v", "--v", dest="verbosity", default="")
    return p


def absolute_path(path: str, cwd: str) -> str:
    """Relative paths in a kubeconfig mean relative to where kubectl ran, not to the daemon."""
    if not path:
        return ""
    path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) or not cwd else os.path.join(cwd, path))


def is_oidc(argv: Sequence[str]) -> bool:
    """True for int128's argument shapes: ``oidc-login get-token …`` or ``get-token --oidc-…``."""
    if list(argv[:2]) == ["oidc-login", "get-token"]:
        return True
    return bool(argv) and argv[0] == "get-token" and any(a.startswith("--oidc-") for a in argv[1:])


def _normalise(argv: Sequence[str]) -> list[str]:
    """Go's ``--flag=true`` / ``--flag=false`` for int128/kubelogin's boolean flags."""
    return normalise_bools(argv, _BOOL_FLAGS)


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _listen_port(addresses: list[str]) -> int | None:
    """MSAL listens on one loopback port; take the first address's (0 or none: any free port)."""
    for address in _split(addresses):
        host, _, port = address.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "[::1]", "") or not port.isdigit():
            raise InvalidArguments(f"--listen-address must look like 127.0.0.1:PORT, not {address!r}")
        return int(port) or None
    return 8000  # int128's first default, so redirect URIs registered for it keep matching


def split_url(url: str) -> SplitResult | None:
    """``urlsplit``, or None for what it refuses (e.g. an unclosed ``[`` is an "Invalid IPv6 URL")."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def parse(argv: Sequence[str], cwd: str = "") -> Parsed:
    """Build the profile of an int128-style get-token call, or raise InvalidArguments with the fix."""
    args = list(argv)
    args = args[2:] if args[:1] == ["oidc-login"] else args[1:]
    ns, unknown = _parser().parse_known_args(_normalise(args))
    if unknown:
        raise InvalidArguments(f"unknown argument {unknown[0]!r}; see `kubetray-shim --help`")
    issuer = ns.oidc_issuer_url.rstrip("/")
    parts = split_url(issuer)
    if parts is None or parts.scheme != "https" or not parts.netloc:
        raise InvalidArguments(f"--oidc-issuer-url must be an https:// URL, not {ns.oidc_issuer_url!r}")
    if not ns.oidc_client_id:
        raise InvalidArguments("--oidc-client-id is required; add it to the kubeconfig's args")
    grant = ns.grant_type.lower()
    if grant == "auto":
        grant = GRANT_PASSWORD if ns.username else GRANT_AUTHCODE
    if grant not in GRANT_TYPES:
        raise InvalidArguments(f"unknown --grant-type {ns.grant_type!r}; use one of auto, {', '.join(GRANT_TYPES)}")
    if grant == GRANT_PASSWORD and not (ns.username and ns.password):
        raise InvalidArguments("--grant-type password needs --username and --password")
    if grant == GRANT_CLIENT_CREDENTIALS and not ns.oidc_client_secret:
        raise InvalidArguments("--grant-type client-credentials needs --oidc-client-secret")
    scopes = [s for s in _split(ns.oidc_extra_scope) if s not in _RESERVED_SCOPES]
    notes: list[str] = []
    for flag, value in (("--token-cache-storage", ns.token_cache_storage), ("--token-cache-dir", ns.token_cache_dir)):
        if value:
            notes.append(f"kubetray: {flag} is ignored; kubetray keeps tokens in the OS keyring")
    if ns.insecure_skip_tls_verify:
        notes.append(INSECURE_WARNING)
    profile = Profile(
        login=LOGIN_OIDC,
        authority=issuer,
        client_id=ns.oidc_client_id,
        server_id="",
        instance_discovery=False,
        redirect_port=_listen_port(ns.listen_address),
        timeout=float(max(1, ns.authentication_timeout_sec)),
        username=ns.username if grant == GRANT_PASSWORD else "",
        grant_type=grant,
        extra_scopes=" ".join(scopes),
        use_access_token=bool(ns.oidc_use_access_token) or grant == GRANT_CLIENT_CREDENTIALS,
        ca_file=os.pathsep.join(absolute_path(path, cwd) for path in _split(ns.certificate_authority)),
        ca_data=" ".join(_split(ns.certificate_authority_data)),
        insecure_skip_tls_verify=bool(ns.insecure_skip_tls_verify),
    )
    secrets = Secrets(client_secret=ns.oidc_client_secret, password=ns.password if grant == GRANT_PASSWORD else "")
    return Parsed(profile, secrets, tuple(notes), local_only=bool(ns.local_only))
