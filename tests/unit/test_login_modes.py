"""Every login mode's arguments, environment precedence, secret handling and source selection."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

import pytest

from broker.core.errors import AuthError, InvalidArguments
from broker.core.model import LOGIN_OIDC, NO_CONTEXT, Profile, RequestContext, Secrets
from broker.core.state import ProfileState
from broker.execplugin.kubelogin_args import parse_exec
from broker.sources._azurecli import AzureCliSource
from broker.sources._msal import app_options, use_os_broker
from broker.sources._oidc import jwt_expiry
from broker.sources.router import LoginRouter
from tests.support.fakes import FakeClock, FakeSource

BASE = ["get-token", "--server-id", "srv", "--client-id", "cli", "--tenant-id", "t1"]


def test_aad_login_method_selects_the_mode_and_azure_variables_override_flags() -> None:
    parsed = parse_exec([*BASE, "--client-secret", "from-flag"],
                        {"AAD_LOGIN_METHOD": "spn", "AZURE_CLIENT_ID": "env-client", "AZURE_CLIENT_SECRET": "env-s"})
    assert parsed.profile.login == "spn"
    assert parsed.profile.client_id == "env-client"
    assert parsed.secrets.client_secret == "env-s"


def test_azure_names_win_over_aad_names_as_in_kubelogin() -> None:
    env = {"AAD_SERVICE_PRINCIPAL_CLIENT_SECRET": "aad", "AZURE_CLIENT_SECRET": "azure"}
    assert parse_exec([*BASE, "-l", "spn"], env).secrets.client_secret == "azure"


def test_disable_environment_override_ignores_the_environment() -> None:
    parsed = parse_exec([*BASE, "-l", "spn", "--client-secret", "flag", "--disable-environment-override"],
                        {"AZURE_CLIENT_SECRET": "env", "AAD_LOGIN_METHOD": "msi"})
    assert (parsed.profile.login, parsed.secrets.client_secret) == ("spn", "flag")


def test_workload_identity_reads_its_four_variables_and_resolves_relative_paths() -> None:
    env = {"AZURE_CLIENT_ID": "wi", "AZURE_TENANT_ID": "t2", "AZURE_FEDERATED_TOKEN_FILE": "tok",
           "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/"}
    p = parse_exec(["get-token", "-l", "workloadidentity", "--server-id", "srv"], env, "/srv/project").profile
    assert (p.client_id, p.tenant_id, p.federated_token_file) == ("wi", "t2", "/srv/project/tok")
    assert p.authority == "https://login.microsoftonline.us/t2"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([*BASE, "-l", "spn"], "--client-secret or --client-certificate"),
        (["get-token", "-l", "msi"], "--server-id is required"),
        ([*BASE, "-l", "ropc"], "--username is required"),
        ([*BASE, "-l", "workloadidentity"], "--federated-token-file is required"),
        (["get-token", "--oidc-issuer-url", "http://idp", "--oidc-client-id", "c"], "https://"),
        (["get-token", "--oidc-issuer-url", "https://idp/x", "--oidc-client-id", "c", "--grant-type", "magic"],
         "unknown --grant-type"),
        (["oidc-login", "get-token", "--oidc-issuer-url", "https://idp/x", "--oidc-client-id", "c",
          "--grant-type", "client-credentials"], "needs --oidc-client-secret"),
    ],
)
def test_bad_mode_arguments_say_what_to_do(argv: list[str], needle: str) -> None:
    with pytest.raises(InvalidArguments) as err:
        parse_exec(argv)
    assert needle in err.value.message and "\n" not in err.value.message


def test_secrets_are_never_profile_fields_nor_in_the_registry_record_nor_in_the_key() -> None:
    a = parse_exec([*BASE, "-l", "spn", "--client-secret", "s3cret-one"])
    b = parse_exec([*BASE, "-l", "spn", "--client-secret", "s3cret-two"])
    assert a.profile == b.profile and a.profile.key == b.profile.key
    record = json.dumps(ProfileState(profile=a.profile).to_record())
    assert "s3cret" not in record and "s3cret" not in repr(a)
    assert ProfileState.from_record(json.loads(record)).profile == a.profile  # survives the JSON round trip


def test_modes_for_other_principals_get_their_own_key_and_cache() -> None:
    interactive = parse_exec(BASE).profile
    spn = parse_exec([*BASE, "-l", "spn", "--client-secret", "x"]).profile
    ropc = parse_exec([*BASE, "-l", "ropc", "--username", "u@example.test"]).profile
    assert len({interactive.key, spn.key, ropc.key}) == 3
    assert len({interactive.cache_name, spn.cache_name, ropc.cache_name}) == 3


def test_a_context_without_secrets_keeps_the_last_non_empty_ones() -> None:
    first = RequestContext({"PATH": "/a"}, "/", Secrets(client_secret="one"))
    later = RequestContext({"PATH": "/b"}, "/")  # another terminal without the variable
    merged = later.with_secrets_from(first)
    assert merged.secrets.client_secret == "one" and merged.get("PATH") == "/b"
    assert "one" not in repr(merged) and "/b" not in repr(merged)


@pytest.mark.parametrize("prefix", [["oidc-login", "get-token"], ["get-token"]])
def test_int128_flags_map_to_an_oidc_profile(prefix: list[str]) -> None:
    parsed = parse_exec([*prefix, "--oidc-issuer-url", "https://idp.example/realms/x/", "--oidc-client-id", "kube",
                         "--oidc-client-secret", "cs", "--oidc-extra-scope", "email",
                         "--oidc-extra-scope=groups,openid",
                         "--listen-address", "127.0.0.1:0", "--token-cache-storage", "keyring",
                         "--insecure-skip-tls-verify", "--certificate-authority", "ca.pem"], cwd="/k")
    p = parsed.profile
    assert (p.login, p.authority, p.client_id, p.grant_type) == (LOGIN_OIDC, "https://idp.example/realms/x", "kube",
                                                                 "authcode")
    assert p.scopes == ("email", "groups") and p.redirect_port is None and p.ca_file == "/k/ca.pem"
    assert parsed.secrets.client_secret == "cs" and not p.use_access_token
    assert any("ignored" in n for n in parsed.notes) and any("WARNING" in n for n in parsed.notes)


def test_oidc_auto_grant_is_password_when_a_username_is_given() -> None:
    p = parse_exec(["get-token", "--oidc-issuer-url", "https://idp/x", "--oidc-client-id", "c",
                    "--username", "u", "--password", "pw"]).profile
    assert (p.grant_type, p.username, p.redirect_port) == ("password", "u", 8000)


def test_os_broker_is_opt_in_interactive_only_and_only_where_the_os_has_one() -> None:
    interactive = parse_exec(BASE).profile
    opted = parse_exec([*BASE, "--use-os-broker"]).profile
    device = parse_exec([*BASE, "-l", "devicecode", "--use-os-broker"]).profile
    assert not use_os_broker(interactive, default=False, platform="win32")
    assert use_os_broker(opted, default=False, platform="win32")
    assert use_os_broker(interactive, default=True, platform="darwin")  # KUBETRAY_OS_BROKER=1
    assert not use_os_broker(opted, default=True, platform="linux")
    assert not use_os_broker(device, default=True, platform="win32")
    assert app_options(opted, os_broker=True)["enable_broker_on_windows"] is True
    assert "enable_broker_on_windows" not in app_options(opted, os_broker=False)


def test_router_dispatches_by_login_and_names_a_missing_mode() -> None:
    clock = FakeClock()
    spn_source = FakeSource(clock)
    spn_source.signed_in = True
    router = LoginRouter({"spn": spn_source})
    spn = parse_exec([*BASE, "-l", "spn", "--client-secret", "x"]).profile
    assert router.acquire_silent(spn, NO_CONTEXT, force_refresh=False).access_token.startswith("tok-")
    with pytest.raises(InvalidArguments):
        router.acquire_silent(parse_exec(BASE).profile, NO_CONTEXT, force_refresh=False)


AZ_CONTEXT = RequestContext({"PATH": "/usr/bin"}, "/")


def _az(stdout: bytes, code: int = 0, stderr: bytes = b"") -> AzureCliSource:
    def run(argv: Sequence[str], timeout: float, env: object) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(list(argv), code, stdout, stderr)

    return AzureCliSource(FakeClock(), run=run, which=lambda name, path: "/usr/bin/az")


def test_azurecli_keeps_the_cli_expiry_and_turns_its_errors_into_one_line() -> None:
    profile = Profile(login="azurecli", authority="https://login.microsoftonline.com/", client_id="",
                      server_id="srv")
    token = _az(b'{"accessToken": "at", "expires_on": 1800000600, "tenant": "t"}').acquire_silent(
        profile, AZ_CONTEXT, force_refresh=False)
    assert token.expires_on == 1800000600
    with pytest.raises(AuthError) as err:
        _az(b"", 1, b"WARNING: x\nERROR: Please run 'az login' to setup account.\n").acquire_silent(
            profile, AZ_CONTEXT, force_refresh=False)
    assert "az login" in err.value.message and "\n" not in err.value.message


def test_jwt_expiry_reads_exp_and_tolerates_garbage() -> None:
    assert jwt_expiry("e30.eyJleHAiOiAxMjN9.sig") == 123.0
    assert jwt_expiry("not a jwt") == 0.0
