"""azd, azurepipelines and --use-azurerm-env-vars: argument and environment rules, and the sources' edges
with fakes (through kubectl: tests/e2e/test_azure_ci_modes.py)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest

from broker.core.errors import AuthError, InvalidArguments, LoginRequired, ProviderUnreachable
from broker.core.model import RequestContext
from broker.execplugin.kubelogin_args import parse_exec
from broker.sources import _azd, _pipelines
from tests.support.fakes import FakeClock

BASE = ["get-token", "--server-id", "srv", "--tenant-id", "t1"]
JOB = {"SYSTEM_ACCESSTOKEN": "job-token", "SYSTEM_OIDCREQUESTURI": "https://dev.azure.test/oidc"}


# -- arguments and environment -----------------------------------------------------------------------
def test_pipelines_take_ids_from_azuresubscription_only_where_the_flags_are_empty() -> None:
    env = {**JOB, "AZURESUBSCRIPTION_CLIENT_ID": "env-client", "AZURESUBSCRIPTION_TENANT_ID": "env-tenant",
           "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": "env-sc"}
    from_env = parse_exec(["get-token", "--login", "azurepipelines", "--server-id", "srv"], env)
    assert (from_env.profile.client_id, from_env.profile.tenant_id, from_env.profile.service_connection_id) == (
        "env-client", "env-tenant", "env-sc")
    flags = parse_exec([*BASE, "--login", "azurepipelines", "--client-id", "c",
                        "--azure-pipelines-service-connection-id", "sc"], env)
    assert (flags.profile.client_id, flags.profile.tenant_id, flags.profile.service_connection_id) == (
        "c", "t1", "sc")
    assert flags.secrets.pipeline_access_token == "job-token"
    assert flags.secrets.oidc_request_uri == "https://dev.azure.test/oidc"
    assert "job-token" not in repr(flags)
    assert from_env.profile.key != flags.profile.key  # another service connection, another principal


def test_azurerm_names_replace_the_client_variables_only_with_the_flag() -> None:
    env = {"ARM_CLIENT_ID": "arm-client", "ARM_CLIENT_SECRET": "arm-secret", "ARM_TENANT_ID": "arm-tenant",
           "AZURE_CLIENT_ID": "az-client", "AZURE_CLIENT_SECRET": "az-secret", "AZURE_TENANT_ID": "az-tenant"}
    arm = parse_exec(["get-token", "--login", "spn", "--server-id", "srv", "--use-azurerm-env-vars"], env)
    assert (arm.profile.client_id, arm.profile.tenant_id, arm.secrets.client_secret) == (
        "arm-client", "arm-tenant", "arm-secret")
    plain = parse_exec(["get-token", "--login", "spn", "--server-id", "srv"], env)
    assert (plain.profile.client_id, plain.profile.tenant_id, plain.secrets.client_secret) == (
        "az-client", "az-tenant", "az-secret")


def test_azd_needs_only_the_server_id_and_keeps_its_tenant() -> None:
    parsed = parse_exec(["get-token", "--login", "azd", "--server-id", "srv", "--tenant-id", "t1"])
    assert (parsed.profile.login, parsed.profile.tenant_id) == ("azd", "t1")
    with pytest.raises(InvalidArguments, match="--server-id is required"):
        parse_exec(["get-token", "--login", "azd"])


def test_older_profile_keys_do_not_change() -> None:
    # The service connection joins the key only when set: spn/msi/... profiles keep the keys they had
    # (the key names the profile in profiles.json and in `kubetray status`).
    p = parse_exec(["get-token", "--login", "spn", "--server-id", "s", "--client-id", "c", "--tenant-id", "t",
                    "--client-secret", "x"]).profile
    before = [p.authority.rstrip("/").lower(), p.client_id, *p.scopes, p.login, p.username, p.identity_resource_id,
              p.subscription, p.tenant_id, p.grant_type, p.client_certificate, p.federated_token_file]
    assert p.key == hashlib.sha256("\n".join(before).encode()).hexdigest()[:16]


# -- azd ---------------------------------------------------------------------------------------------
class Runs:
    def __init__(self, code: int, out: bytes = b"", err: bytes = b"") -> None:
        self.code, self.out, self.err = code, out, err
        self.argv: list[str] = []
        self.env: dict[str, str] = {}

    def __call__(self, argv: Sequence[str], timeout: float, env: Any) -> subprocess.CompletedProcess[bytes]:
        self.argv, self.env = list(argv), dict(env)
        return subprocess.CompletedProcess(argv, self.code, self.out, self.err)


def test_azd_token_and_its_utc_expiry_are_read() -> None:
    run = Runs(0, b'{"token": "tok", "expiresOn": "2030-01-02T03:04:05Z"}')
    profile = parse_exec(["get-token", "--login", "azd", "--server-id", "srv"]).profile
    looked: list[tuple[str, str]] = []

    def which(name: str, path: str) -> str:
        looked.append((name, path))
        return "/opt/azd"

    context = RequestContext({"PATH": "/caller/bin", "AZURE_CONFIG_DIR": "/caller/az"})
    source = _azd.AzdSource(FakeClock(), run=run, which=which, base_env={"HOME": "/h", "PATH": "/daemon"})
    token = source.acquire_silent(profile, context, force_refresh=False)
    assert looked == [("azd", "/caller/bin")]  # the caller's PATH, never the daemon's
    assert run.env == {"HOME": "/h", "PATH": "/caller/bin", "AZURE_CONFIG_DIR": "/caller/az"}
    assert run.argv == ["/opt/azd", "auth", "token", "-o", "json", "--no-prompt", "--scope", "srv/.default"]
    assert token.access_token == "tok" and token.expires_on == 1893553445.0


@pytest.mark.parametrize(("run", "which", "error", "needle"), [
    (Runs(0), None, InvalidArguments, "needs the Azure Developer CLI (`azd`) on kubectl's PATH"),
    (Runs(1, err=b"ERROR: not logged in, run `azd auth login` to login\n"), "/azd", AuthError, "azd auth login"),
    (Runs(0, b'{"accessToken": "x"}'), "/azd", AuthError, "printed no token"),
    (Runs(0, b"not json"), "/azd", AuthError, "printed no token"),
])
def test_azd_failures_are_one_sentence(run: Runs, which: str | None, error: type[Exception], needle: str) -> None:
    profile = parse_exec(["get-token", "--login", "azd", "--server-id", "srv"]).profile
    with pytest.raises(error) as raised:
        _azd.AzdSource(FakeClock(), run=run, which=lambda name, path: which, base_env={}).acquire_silent(
            profile, RequestContext({"PATH": "/bin"}), force_refresh=False)
    assert needle in str(raised.value) and "\n" not in str(raised.value)


# -- the Azure DevOps OIDC request ---------------------------------------------------------------------
class Reply:
    def __init__(self, status: int, doc: Any) -> None:
        self.status_code, self._doc = status, doc

    def json(self) -> Any:
        return self._doc


class Http:
    def __init__(self, reply: Reply | Exception) -> None:
        self.reply = reply
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def post(self, url: str, **kwargs: Any) -> Reply:
        self.calls.append((url, kwargs))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_the_oidc_request_is_azidentitys() -> None:
    http = Http(Reply(200, {"oidcToken": "oidc"}))
    assert _pipelines.fetch_oidc_token(http, "https://dev.azure.test/x/oidctoken/", "s c", "job") == "oidc"
    ((url, kwargs),) = http.calls
    assert url == "https://dev.azure.test/x/oidctoken?api-version=7.1&serviceConnectionId=s%20c"
    assert kwargs["headers"]["Authorization"] == "Bearer job"
    assert kwargs["headers"]["X-TFS-FedAuthRedirect"] == "Suppress"


@pytest.mark.parametrize(("reply", "error", "needle"), [
    (Reply(401, {}), AuthError, "refused SYSTEM_ACCESSTOKEN (HTTP 401)"),
    (Reply(404, {}), AuthError, "check --azure-pipelines-service-connection-id"),
    (Reply(200, {"token": "x"}), AuthError, "no oidcToken"),
    (ConnectionError("down"), ProviderUnreachable, "cannot reach Azure DevOps"),
])
def test_oidc_request_failures_name_the_cause_not_the_token(reply: Reply | Exception, error: type[Exception],
                                                            needle: str) -> None:
    with pytest.raises(error) as raised:
        _pipelines.fetch_oidc_token(Http(reply), "https://dev.azure.test/oidc", "sc", "job-secret")
    assert needle in str(raised.value) and "job-secret" not in str(raised.value)


def test_a_plain_http_request_uri_is_refused() -> None:
    with pytest.raises(InvalidArguments, match="https"):
        _pipelines.fetch_oidc_token(Http(Reply(200, {})), "http://dev.azure.test/oidc", "sc", "job")


def test_after_a_restart_the_job_values_are_asked_for_again() -> None:
    source = _pipelines.PipelinesSource(FakeClock(), http_client_factory=lambda network: None)
    profile = parse_exec([*BASE, "--login", "azurepipelines", "--client-id", "c",
                          "--azure-pipelines-service-connection-id", "sc"], JOB).profile
    with pytest.raises(LoginRequired, match="run kubectl again inside the pipeline step"):
        source.acquire_silent(profile, RequestContext(), force_refresh=False)


def test_azd_without_the_callers_path_waits_for_a_call() -> None:
    profile = parse_exec(["get-token", "--login", "azd", "--server-id", "srv"]).profile
    with pytest.raises(LoginRequired, match="run kubectl again"):
        _azd.AzdSource(FakeClock(), run=Runs(0)).acquire_silent(profile, RequestContext(), force_refresh=False)
