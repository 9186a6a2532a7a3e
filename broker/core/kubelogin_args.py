"""Turn Azure kubelogin's get-token arguments into a Profile.

The kubeconfig is the configuration: the same flags, the same meaning as ``kubelogin get-token``, so a
kubeconfig switches to kubetray by changing only ``command:``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from broker.core.errors import InvalidArguments
from broker.core.model import LOGIN_DEVICECODE, LOGIN_INTERACTIVE, Profile

# kubelogin's --environment values and their sign-in hosts (Azure's sovereign clouds).
ENVIRONMENTS: Mapping[str, str] = {
    "azurepubliccloud": "https://login.microsoftonline.com/",
    "azurechinacloud": "https://login.chinacloudapi.cn/",
    "azureusgovernmentcloud": "https://login.microsoftonline.us/",
}
ENVIRONMENT_NAMES = ("AzurePublicCloud", "AzureChinaCloud", "AzureUSGovernmentCloud")

SUPPORTED_LOGINS = (LOGIN_INTERACTIVE, LOGIN_DEVICECODE)
# Modes kubelogin has that arrive with a later kubetray release; named so the error can say so.
KNOWN_LOGINS = (*SUPPORTED_LOGINS, "spn", "ropc", "msi", "azurecli", "workloadidentity", "azd")

_BOOL_FLAGS = ("--disable-instance-discovery", "--legacy", "--pop-enabled", "--disable-environment-override")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting: the daemon must keep running."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InvalidArguments(f"{message}; see `kubetray-shim --help`")


def _parser() -> _Parser:
    p = _Parser(prog="kubetray-shim get-token", add_help=False, allow_abbrev=False)
    p.add_argument("-l", "--login", default=LOGIN_INTERACTIVE)
    p.add_argument("--server-id", default="")
    p.add_argument("--client-id", default="")
    p.add_argument("-t", "--tenant-id", default="")
    p.add_argument("-e", "--environment", default="")
    p.add_argument("--authority-host", default="")
    p.add_argument("--disable-instance-discovery", action="store_true")
    p.add_argument("--timeout", default="")
    p.add_argument("--login-hint", default="")
    p.add_argument("--redirect-url", default="")
    # Accepted so converted kubeconfigs keep working; they change nothing here.
    p.add_argument("--legacy", action="store_true")
    p.add_argument("--pop-enabled", action="store_true")
    p.add_argument("--pop-claims", default="")
    p.add_argument("--token-cache-dir", default="")
    p.add_argument("--disable-environment-override", action="store_true")
    p.add_argument("-v", "--v", "--verbosity", dest="verbosity", default="")
    return p


def parse_duration(text: str) -> float:
    """Parse a Go duration ("60s", "5m", "1m30s", "1h") into seconds."""
    pos, total = 0, 0.0
    factors = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * factors[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise InvalidArguments(f"--timeout {text!r} is not a duration; use a value such as 60s or 5m")
    return total


def _normalise_bools(argv: Sequence[str]) -> list[str]:
    """Go flags allow ``--flag=true``/``--flag=false``; argparse does not."""
    out: list[str] = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and name in _BOOL_FLAGS:
            if value.lower() in ("true", "1"):
                out.append(name)
            elif value.lower() not in ("false", "0"):
                raise InvalidArguments(f"{name} takes true or false, not {value!r}")
        else:
            out.append(arg)
    return out


def authority_for(environment: str, authority_host: str, tenant_id: str) -> str:
    """The MSAL authority URL: ``<host>/<tenant>``, from --authority-host or --environment."""
    if authority_host:
        parts = urlsplit(authority_host)
        if parts.scheme != "https" or not parts.netloc:
            raise InvalidArguments(f"--authority-host must be an https:// URL, not {authority_host!r}")
        host = authority_host if authority_host.endswith("/") else authority_host + "/"
    elif environment:
        try:
            host = ENVIRONMENTS[environment.lower()]
        except KeyError:
            raise InvalidArguments(
                f"unknown --environment {environment!r}; use one of {', '.join(ENVIRONMENT_NAMES)}"
            ) from None
    else:
        host = ENVIRONMENTS["azurepubliccloud"]
    return host + tenant_id


def _redirect_port(url: str) -> int | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1") or not parts.port:
        raise InvalidArguments(f"--redirect-url must look like http://localhost:PORT, not {url!r}")
    return parts.port


def parse_get_token(argv: Sequence[str]) -> Profile:
    """Build a Profile from ``get-token …`` arguments, or raise InvalidArguments with the fix."""
    args_in = list(argv)
    if args_in[:1] == ["get-token"]:
        args_in = args_in[1:]
    elif args_in and not args_in[0].startswith("-"):
        raise InvalidArguments(f"unknown command {args_in[0]!r}; kubeconfigs call `kubetray-shim get-token …`")
    ns, unknown = _parser().parse_known_args(_normalise_bools(args_in))
    if unknown:
        raise InvalidArguments(f"unknown argument {unknown[0]!r}; see `kubetray-shim --help`")
    login = str(ns.login).lower()
    if login not in KNOWN_LOGINS:
        raise InvalidArguments(f"unknown --login {ns.login!r}; use one of {', '.join(SUPPORTED_LOGINS)}")
    if login not in SUPPORTED_LOGINS:
        raise InvalidArguments(
            f"--login {login} is not supported by this kubetray version; use interactive or devicecode"
        )
    for flag, value in (("--server-id", ns.server_id), ("--client-id", ns.client_id), ("--tenant-id", ns.tenant_id)):
        if not value:
            raise InvalidArguments(f"{flag} is required for --login {login}; add it to the kubeconfig's args")
    if not re.fullmatch(r"[A-Za-z0-9.\-_]+", ns.tenant_id):
        raise InvalidArguments(f"--tenant-id {ns.tenant_id!r} is not a tenant id or domain name")
    return Profile(
        login=login,
        authority=authority_for(ns.environment, ns.authority_host, ns.tenant_id),
        client_id=ns.client_id,
        server_id=ns.server_id,
        tenant_id=ns.tenant_id,
        environment=ns.environment,
        instance_discovery=not ns.disable_instance_discovery,
        login_hint=ns.login_hint,
        redirect_port=_redirect_port(ns.redirect_url),
        timeout=parse_duration(ns.timeout) if ns.timeout else 60.0,
    )
