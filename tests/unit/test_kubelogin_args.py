"""Azure kubelogin's get-token flags map to the same profile they mean to kubelogin."""

from __future__ import annotations

import pytest

from broker.core.errors import InvalidArguments
from broker.execplugin.kubelogin_args import (
    ENVIRONMENT_NAMES,
    authority_for,
    parse_duration,
    parse_exec,
    parse_get_token,
)

AKS_SERVER = "6dae42f8-4368-4678-94ff-3960e28e3630"
AKS_CLIENT = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
BASE = ["get-token", "--server-id", AKS_SERVER, "--client-id", AKS_CLIENT, "--tenant-id", "contoso.example"]


def test_az_aks_get_credentials_shape() -> None:
    p = parse_get_token([*BASE, "--login", "interactive", "--environment", "AzurePublicCloud"])
    assert p.authority == "https://login.microsoftonline.com/contoso.example"
    assert p.scopes == (f"{AKS_SERVER}/.default",)
    assert (p.login, p.client_id, p.instance_discovery, p.timeout) == ("interactive", AKS_CLIENT, True, 60.0)


@pytest.mark.parametrize(
    ("env", "host"),
    [
        ("AzurePublicCloud", "https://login.microsoftonline.com/"),
        ("AzureChinaCloud", "https://login.chinacloudapi.cn/"),
        ("AzureUSGovernmentCloud", "https://login.microsoftonline.us/"),
        ("azurechinacloud", "https://login.chinacloudapi.cn/"),
    ],
)
def test_sovereign_clouds(env: str, host: str) -> None:
    assert authority_for(env, "", "t1") == host + "t1"


def test_unknown_environment_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidArguments) as err:
        parse_get_token([*BASE, "-e", "AzureMoonCloud"])
    for name in ENVIRONMENT_NAMES:
        assert name in err.value.message


def test_short_flags_go_bools_and_extras() -> None:
    p = parse_get_token(
        ["get-token", "-l", "devicecode", "--server-id", "s", "--client-id", "c", "-t", "t",
         "--authority-host", "https://127.0.0.1:8443", "--disable-instance-discovery=true",
         "--timeout", "1m30s", "--login-hint", "bob@example.test", "--redirect-url", "http://localhost:8400",
         "--legacy=false", "--token-cache-dir", "/somewhere"]
    )
    assert p.login == "devicecode"
    assert p.authority == "https://127.0.0.1:8443/t"
    assert p.instance_discovery is False
    assert p.timeout == 90.0
    assert p.login_hint == "bob@example.test"
    assert p.redirect_port == 8400


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["get-token", "--client-id", "c", "--tenant-id", "t"], "--server-id is required"),
        ([*BASE, "--login", "azurepipelines"], "--azure-pipelines-service-connection-id is required"),
        ([*BASE, "--login", "azurepipelines", "--azure-pipelines-service-connection-id", "sc"],
         "needs SYSTEM_ACCESSTOKEN in the environment"),
        ([*BASE, "--login", "magic"], "unknown --login"),
        ([*BASE, "--bogus"], "unknown argument '--bogus'"),
        ([*BASE, "--timeout", "soon"], "not a duration"),
        ([*BASE, "--authority-host", "http://insecure"], "https://"),
        ([*BASE, "--redirect-url", "https://example.test"], "http://localhost:PORT"),
        (["convert-kubeconfig"], "unknown command"),
        ([*BASE[:-1], "evil/../tenant"], "not a tenant id"),
    ],
)
def test_bad_arguments_say_what_to_do(argv: list[str], needle: str) -> None:
    with pytest.raises(InvalidArguments, match=None) as err:
        parse_get_token(argv)
    assert needle in err.value.message
    assert "\n" not in err.value.message


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("5m", 300), ("1h", 3600), ("1m30s", 90), ("1.5s", 1.5)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "args",
    [
        ["--authority-host", "https://[127.0.0.1:443/"],  # urlsplit: "Invalid IPv6 URL"
        ["--redirect-url", "http://localhost:99999"],  # urlsplit's port: out of range
        ["--redirect-url", "http://localhost:port"],
    ],
)
def test_urls_python_cannot_split_are_invalid_arguments_not_internal_errors(args: list[str]) -> None:
    # found by the fuzz test (tests/integration/test_resilience.py): these raised ValueError
    with pytest.raises(InvalidArguments):
        parse_exec(["get-token", "--server-id", "s", "--client-id", "c", "--tenant-id", "t", *args], {}, "/")


def test_an_oidc_issuer_python_cannot_split_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArguments, match="--oidc-issuer-url"):
        parse_exec(["get-token", "--oidc-issuer-url", "https://[::1", "--oidc-client-id", "c"], {}, "/")
