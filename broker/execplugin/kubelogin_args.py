"""Turn Azure kubelogin's get-token arguments (and environment) into a Profile plus in-memory secrets.

The kubeconfig is the configuration: the same flags, the same environment variables, the same
meaning as ``kubelogin get-token``, so a kubeconfig switches to kubetray by changing only ``command:``.
int128/kubelogin's OpenID Connect arguments are parsed by :mod:`broker.execplugin.oidc_args`.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections.abc import Mapping, Sequence

from broker.core.errors import InvalidArguments
from broker.core.model import (
    LOGIN_AZD,
    LOGIN_AZURECLI,
    LOGIN_DEVICECODE,
    LOGIN_INTERACTIVE,
    LOGIN_MSI,
    LOGIN_PIPELINES,
    LOGIN_ROPC,
    LOGIN_SPN,
    LOGIN_WORKLOAD,
    Parsed,
    Profile,
    Secrets,
)
from broker.execplugin import oidc_args
from broker.execplugin.goflags import normalise_bools
from broker.execplugin.oidc_args import absolute_path, split_url

# kubelogin's --environment values and their sign-in hosts (Azure's sovereign clouds).
ENVIRONMENTS: Mapping[str, str] = {
    "azurepubliccloud": "https://login.microsoftonline.com/",
    "azurechinacloud": "https://login.chinacloudapi.cn/",
    "azureusgovernmentcloud": "https://login.microsoftonline.us/",
}
ENVIRONMENT_NAMES = ("AzurePublicCloud", "AzureChinaCloud", "AzureUSGovernmentCloud")

SUPPORTED_LOGINS = (LOGIN_INTERACTIVE, LOGIN_DEVICECODE, LOGIN_SPN, LOGIN_ROPC, LOGIN_MSI, LOGIN_WORKLOAD,
                    LOGIN_AZURECLI, LOGIN_AZD, LOGIN_PIPELINES)

_BOOL_FLAGS = ("--disable-instance-discovery", "--legacy", "--pop-enabled", "--disable-environment-override",
               "--use-os-broker", "--local-only", "--use-azurerm-env-vars")
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
    p.add_argument("--client-secret", default="")
    p.add_argument("--client-certificate", default="")
    p.add_argument("--client-certificate-password", default="")
    p.add_argument("--username", default="")
    p.add_argument("--password", default="")
    p.add_argument("--identity-resource-id", default="")
    p.add_argument("--federated-token-file", default="")
    p.add_argument("--subscription", default="")
    p.add_argument("--azure-pipelines-service-connection-id", dest="service_connection_id", default="")
    p.add_argument("--use-azurerm-env-vars", action="store_true")
    p.add_argument("--use-os-broker", action="store_true")
    # kubetray's own: never serve this profile to a caller forwarded from another machine (ssh).
    p.add_argument("--local-only", action="store_true")
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


def authority_for(environment: str, authority_host: str, tenant_id: str) -> str:
    """The MSAL authority URL: ``<host>/<tenant>``, from --authority-host or --environment."""
    if authority_host:
        parts = split_url(authority_host)
        if parts is None or parts.scheme != "https" or not parts.netloc:
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
    parts = split_url(url)
    try:
        port = parts.port if parts is not None else None
    except ValueError:  # a port that is not a number, or out of range
        port = None
    if parts is None or parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1") or not port:
        raise InvalidArguments(f"--redirect-url must look like http://localhost:PORT, not {url!r}")
    return port


# Environment overrides, in kubelogin's order: a later name wins over an earlier one.
_CLIENT_ENV: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("client_id", ("AAD_SERVICE_PRINCIPAL_CLIENT_ID", "AZURE_CLIENT_ID")),
    ("client_secret", ("AAD_SERVICE_PRINCIPAL_CLIENT_SECRET", "AZURE_CLIENT_SECRET")),
    ("client_certificate", ("AAD_SERVICE_PRINCIPAL_CLIENT_CERTIFICATE", "AZURE_CLIENT_CERTIFICATE_PATH")),
    ("client_certificate_password",
     ("AAD_SERVICE_PRINCIPAL_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_CERTIFICATE_PASSWORD")),
    ("tenant_id", ("AZURE_TENANT_ID",)),
)
# --use-azurerm-env-vars: the Terraform azurerm provider's names replace the five above (and only those).
_ARM_ENV: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("client_id", ("ARM_CLIENT_ID",)),
    ("client_secret", ("ARM_CLIENT_SECRET",)),
    ("client_certificate", ("ARM_CLIENT_CERTIFICATE_PATH",)),
    ("client_certificate_password", ("ARM_CLIENT_CERTIFICATE_PASSWORD",)),
    ("tenant_id", ("ARM_TENANT_ID",)),
)
_USER_ENV: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("username", ("AAD_USER_PRINCIPAL_NAME", "AZURE_USERNAME")),
    ("password", ("AAD_USER_PRINCIPAL_PASSWORD", "AZURE_PASSWORD")),
    ("login", ("AAD_LOGIN_METHOD",)),
)
_WORKLOAD_ENV = (
    ("client_id", "AZURE_CLIENT_ID"),
    ("federated_token_file", "AZURE_FEDERATED_TOKEN_FILE"),
    ("authority_host", "AZURE_AUTHORITY_HOST"),
)
# azurepipelines: the service connection's values fill only what the flags left empty.
_PIPELINES_ENV = (
    ("client_id", "AZURESUBSCRIPTION_CLIENT_ID"),
    ("tenant_id", "AZURESUBSCRIPTION_TENANT_ID"),
    ("service_connection_id", "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
)
# What each mode cannot do without (beyond the secrets checked separately).
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    LOGIN_INTERACTIVE: ("server_id", "client_id", "tenant_id"),
    LOGIN_DEVICECODE: ("server_id", "client_id", "tenant_id"),
    LOGIN_SPN: ("server_id", "client_id", "tenant_id"),
    LOGIN_ROPC: ("server_id", "client_id", "tenant_id", "username"),
    LOGIN_WORKLOAD: ("server_id", "client_id", "tenant_id", "federated_token_file"),
    LOGIN_MSI: ("server_id",),
    LOGIN_AZURECLI: ("server_id",),
    LOGIN_AZD: ("server_id",),
    LOGIN_PIPELINES: ("server_id", "client_id", "tenant_id", "service_connection_id"),
}
_FLAG_NAMES = {"service_connection_id": "--azure-pipelines-service-connection-id"}


# The caller's variables that choose WHICH identity a mode gets (not how to reach it): they join the
# profile's identity, so kubeconfigs whose exec.env differ there never share a token.
_SCOPE_ENV: Mapping[str, tuple[str, ...]] = {
    LOGIN_AZURECLI: ("AZURE_CONFIG_DIR",),
    LOGIN_MSI: ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST"),
}


def env_scope(login: str, env: Mapping[str, str]) -> str:
    """A short digest of the identity-choosing variables ``login`` reads, or "" when none is set."""
    lines = [f"{name}={env[name]}" for name in _SCOPE_ENV.get(login, ()) if env.get(name)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16] if lines else ""


def _apply_environment(ns: argparse.Namespace, env: Mapping[str, str]) -> None:
    """kubelogin's UpdateFromEnv: AAD_LOGIN_METHOD picks the mode, AZURE_* (or ARM_*) override flags."""
    for attr, names in (*(_ARM_ENV if ns.use_azurerm_env_vars else _CLIENT_ENV), *_USER_ENV):
        for name in names:
            if name in env:
                setattr(ns, attr, env[name])
    login = str(ns.login).lower()
    if login == LOGIN_WORKLOAD:
        for attr, name in _WORKLOAD_ENV:
            if name in env:
                setattr(ns, attr, env[name])
    if login == LOGIN_PIPELINES:
        for attr, name in _PIPELINES_ENV:
            if not getattr(ns, attr) and name in env:
                setattr(ns, attr, env[name])


def parse_get_token(argv: Sequence[str]) -> Profile:
    """Build a Profile from ``get-token …`` arguments alone, or raise InvalidArguments with the fix."""
    return parse_exec(argv).profile


def parse_exec(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str = "") -> Parsed:
    """Parse what a shim forwarded: argv, the caller's forwarded variables
    (docs/protocol.md) and cwd.

    int128/kubelogin's forms (``oidc-login get-token …``, ``get-token --oidc-…``) go to oidc_args.
    """
    args_in = list(argv)
    if oidc_args.is_oidc(args_in):
        return oidc_args.parse(args_in, cwd)
    if args_in[:1] == ["get-token"]:
        args_in = args_in[1:]
    elif args_in and not args_in[0].startswith("-"):
        raise InvalidArguments(f"unknown command {args_in[0]!r}; kubeconfigs call `kubetray-shim get-token …`")
    ns, unknown = _parser().parse_known_args(normalise_bools(args_in, _BOOL_FLAGS))
    if unknown:
        raise InvalidArguments(f"unknown argument {unknown[0]!r}; see `kubetray-shim --help`")
    if not ns.disable_environment_override:
        _apply_environment(ns, env or {})
    login = str(ns.login).lower()
    if login not in SUPPORTED_LOGINS:
        raise InvalidArguments(f"unknown --login {ns.login!r}; use one of {', '.join(SUPPORTED_LOGINS)}")
    for attr in _REQUIRED[login]:
        if not getattr(ns, attr):
            flag = _FLAG_NAMES.get(attr) or "--" + attr.replace("_", "-")
            raise InvalidArguments(f"{flag} is required for --login {login}; add it to the kubeconfig's args")
    pipeline_token, oidc_uri = (env or {}).get("SYSTEM_ACCESSTOKEN", ""), (env or {}).get("SYSTEM_OIDCREQUESTURI", "")
    if login == LOGIN_PIPELINES and not (pipeline_token and oidc_uri):
        missing = "SYSTEM_ACCESSTOKEN" if not pipeline_token else "SYSTEM_OIDCREQUESTURI"
        raise InvalidArguments(
            f"--login azurepipelines needs {missing} in the environment: map it into the step "
            "(env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)) and run inside an AzureCLI@2 task or similar")
    if ns.tenant_id and not re.fullmatch(r"[A-Za-z0-9.\-_]+", ns.tenant_id):
        raise InvalidArguments(f"--tenant-id {ns.tenant_id!r} is not a tenant id or domain name")
    secrets = Secrets(client_secret=ns.client_secret, password=ns.password,
                      certificate_password=ns.client_certificate_password)
    if login == LOGIN_PIPELINES:
        secrets = Secrets(pipeline_access_token=pipeline_token, oidc_request_uri=oidc_uri)
    if login == LOGIN_SPN and not (ns.client_secret or ns.client_certificate):
        raise InvalidArguments(
            "--login spn needs --client-secret or --client-certificate (or AAD_SERVICE_PRINCIPAL_CLIENT_SECRET, "
            "AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH in the environment)"
        )
    # ropc without a password is fine while the keyring's refresh token works (see RopcSource).
    profile = Profile(
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
        username=ns.username if login == LOGIN_ROPC else "",
        client_certificate=absolute_path(ns.client_certificate, cwd) if login == LOGIN_SPN else "",
        identity_resource_id=ns.identity_resource_id if login == LOGIN_MSI else "",
        federated_token_file=absolute_path(ns.federated_token_file, cwd) if login == LOGIN_WORKLOAD else "",
        subscription=ns.subscription if login == LOGIN_AZURECLI else "",
        service_connection_id=ns.service_connection_id if login == LOGIN_PIPELINES else "",
        use_os_broker=bool(ns.use_os_broker) and login == LOGIN_INTERACTIVE,
        env_scope=env_scope(login, env or {}),
    )
    notes = ("kubetray: --login ropc is deprecated (it cannot satisfy MFA or Conditional Access); "
             "prefer interactive, devicecode or spn",) if login == LOGIN_ROPC else ()
    return Parsed(profile, secrets if login in (LOGIN_SPN, LOGIN_ROPC, LOGIN_PIPELINES) else Secrets(), notes,
                  local_only=bool(ns.local_only))
