"""Azure kubelogin's azd and azurepipelines modes and its --use-azurerm-env-vars, through real kubectl.

azd is a stand-in script that gets a real client-credentials token from the test authority and prints
it in azd's shape; the Azure Pipelines job's OIDC endpoint is tests/support/pipelines.py, whose tokens
the test authority accepts as the service connection's federated credential.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_entra_modes import SECRET, SP_ID, _no_secret_at_rest, _ok, erig  # noqa: F401
from tests.support import fake_cli
from tests.support.pipelines import PipelinesOidc
from tests.support.rig import SERVER_ID, Rig
from tests.support.tls import TestCA

pytestmark = pytest.mark.e2e

SERVICE_CONNECTION = "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f"

def _fake_azd(directory: Path, token_url: str) -> Path:
    """The stand-in Azure Developer CLI: `azd auth token` with a real token from the test authority."""
    expires = ('now = datetime.datetime.now(datetime.timezone.utc)\n'
               'until = now + datetime.timedelta(seconds=reply["expires_in"])\n'
               'print(json.dumps({"token": reply["access_token"],\n'
               '                  "expiresOn": until.strftime("%Y-%m-%dT%H:%M:%SZ")}))\n')
    return fake_cli.install(directory, "azd", doc="A stand-in Azure Developer CLI: `azd auth token`.",
                            logged_out=fake_cli.AZD_LOGGED_OUT,
                            body=fake_cli.client_credentials(SP_ID, SECRET, SERVER_ID, token_url) + expires)


def _args(rig: Rig, login: str, *extra: str, drop: tuple[str, ...] = ()) -> None:
    rig.write_kubeconfig(login, *extra)
    path = rig.root / "kubeconfig"
    config = json.loads(path.read_text())
    args: list[str] = config["users"][0]["user"]["exec"]["args"]
    for flag in drop:  # leave a value to the environment, as a pipeline's kubeconfig would
        i = args.index(flag)
        del args[i:i + 2]
    if "--client-id" in args:
        args[args.index("--client-id") + 1] = SP_ID
    path.write_text(json.dumps(config))


def test_azd_runs_azd_auth_token_for_the_server_scope_and_tenant(erig: Rig, tmp_path: Path) -> None:  # noqa: F811
    erig.authority.register_client_secret(SP_ID, SECRET)
    bin_dir = _fake_azd(tmp_path / "azd-bin", f"{erig.authority.authority_url}/oauth2/v2.0/token")
    erig.env["PATH"] = f"{bin_dir}{os.pathsep}{erig.env['PATH']}"
    _args(erig, "azd")
    _ok(erig)
    _ok(erig)
    (logged,) = (bin_dir / "azd.log").read_text().splitlines()  # the second call came from memory
    assert logged.split() == ["auth", "token", "-o", "json", "--no-prompt", "--scope", f"{SERVER_ID}/.default",
                              "--tenant-id", erig.authority.tenant_id]
    (profile,) = erig.status()["profiles"]
    assert (profile["login"], profile["account"]) == ("azd", "Azure Developer CLI")


def test_azd_not_signed_in_says_run_azd_auth_login(erig: Rig, tmp_path: Path) -> None:  # noqa: F811
    bin_dir = _fake_azd(tmp_path / "azd-bin", "https://127.0.0.1:9/unused")
    (bin_dir / "logged-out").touch()
    erig.env["PATH"] = f"{bin_dir}{os.pathsep}{erig.env['PATH']}"
    _args(erig, "azd")
    proc = erig.kubectl("get", "pods")
    assert proc.returncode != 0
    assert b"run `azd auth login`" in proc.stderr


@pytest.fixture
def pipeline(erig: Rig, ca: TestCA, tmp_path: Path) -> Iterator[PipelinesOidc]:  # noqa: F811
    with PipelinesOidc(ca, tmp_path / "pipelines", erig.authority, SP_ID, SERVICE_CONNECTION) as endpoint:
        yield endpoint


def test_azurepipelines_federates_the_jobs_oidc_token_from_the_service_connection_environment(
    erig: Rig, pipeline: PipelinesOidc  # noqa: F811
) -> None:
    # As in an AzureCLI@2 step: the service connection's ids come from AZURESUBSCRIPTION_*, not the args.
    _args(erig, "azurepipelines", drop=("--client-id", "--tenant-id"))
    env = {"SYSTEM_ACCESSTOKEN": pipeline.access_token, "SYSTEM_OIDCREQUESTURI": pipeline.url,
           "AZURESUBSCRIPTION_CLIENT_ID": SP_ID, "AZURESUBSCRIPTION_TENANT_ID": erig.authority.tenant_id,
           "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": SERVICE_CONNECTION}
    _ok(erig, **env)
    _ok(erig, **env)
    (request,) = pipeline.requests  # the second call was served from the daemon's memory
    assert request == type(request)("7.1", SERVICE_CONNECTION, True, "Suppress")
    assert erig.authority.counts.get("token.client_credentials", 0) == 1
    (profile,) = erig.status()["profiles"]
    assert profile["login"] == "azurepipelines" and profile["client_id"] == SP_ID
    _no_secret_at_rest(erig, *pipeline.secrets())


def test_azurepipelines_with_a_wrong_access_token_names_the_cause_and_no_token(
    erig: Rig, pipeline: PipelinesOidc  # noqa: F811
) -> None:
    _args(erig, "azurepipelines", "--azure-pipelines-service-connection-id", SERVICE_CONNECTION)
    proc = erig.run("kubectl", "get", "pods", SYSTEM_ACCESSTOKEN="not-the-job-token",
                    SYSTEM_OIDCREQUESTURI=pipeline.url)
    assert proc.returncode != 0
    assert b"Azure DevOps refused SYSTEM_ACCESSTOKEN (HTTP 401)" in proc.stderr
    assert b"not-the-job-token" not in proc.stderr
    missing = erig.run("kubectl", "get", "pods")
    assert b"needs SYSTEM_ACCESSTOKEN in the environment" in missing.stderr


def test_use_azurerm_env_vars_takes_the_service_principal_from_arm_variables(erig: Rig) -> None:  # noqa: F811
    erig.authority.register_client_secret(SP_ID, SECRET)
    _args(erig, "spn", "--use-azurerm-env-vars", drop=("--client-id", "--tenant-id"))
    # The AZURE_* names are ignored with the flag (kubelogin's rule): a wrong one must not be used.
    _ok(erig, ARM_CLIENT_ID=SP_ID, ARM_CLIENT_SECRET=SECRET, ARM_TENANT_ID=erig.authority.tenant_id,
        AZURE_CLIENT_SECRET="not-this-one")
    (profile,) = erig.status()["profiles"]
    assert (profile["login"], profile["client_id"], profile["tenant_id"]) == ("spn", SP_ID, erig.authority.tenant_id)
    _no_secret_at_rest(erig, SECRET)
