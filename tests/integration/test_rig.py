"""Tests of the test rig itself: the Entra stand-in against real MSAL, the API-server stand-in
against the real kubectl, and the scripted browser. If these drift from the real services, every
test built on the rig proves less, so they assert the exact shapes clients depend on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests

from tests.support import browser
from tests.support._jwt import SigningKey
from tests.support.apiserver import ApiServer
from tests.support.authority import EntraAuthority, TestUser
from tests.support.tls import TestCA, system_ca_file

REPO = Path(__file__).resolve().parents[2]
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the Azure CLI's public client id
SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"  # AKS's Entra server application
SCOPES = [f"{SERVER_ID}/.default"]
KUBECTL = shutil.which("kubectl")


# --- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Every stand-in must join its threads on stop(); fail the test that leaks one."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3
    while extra := [t for t in threading.enumerate() if t not in before and t.is_alive()]:
        if time.monotonic() > deadline:
            pytest.fail(f"threads left running: {[t.name for t in extra]}")
        time.sleep(0.02)


@pytest.fixture
def session(bundle: Path) -> Iterator[requests.Session]:
    """A session whose every request names the bundle: REQUESTS_CA_BUNDLE beats a session's verify."""
    with requests.Session() as http:
        http.request = functools.partial(http.request, verify=str(bundle))  # type: ignore[method-assign]
        yield http


@pytest.fixture
def app(authority: EntraAuthority, session: requests.Session) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        CLIENT_ID, authority=authority.authority_url, instance_discovery=False, http_client=session
    )


@pytest.fixture
def apiserver(ca: TestCA, tmp_path: Path, authority: EntraAuthority, bundle: Path) -> Iterator[ApiServer]:
    with ApiServer(
        ca, tmp_path / "apiserver", jwks_url=authority.jwks_url, issuer=authority.issuer_v1,
        audience=SERVER_ID, client_ids=(CLIENT_ID,), ca_bundle_for_jwks=bundle,
    ) as server:
        yield server


def device_sign_in(app: msal.PublicClientApplication) -> dict[str, Any]:
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert "user_code" in flow, flow
    result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    return result


def claims_of(token: str, authority: EntraAuthority, audience: str) -> dict[str, Any]:
    """Verify a token against the authority's published JWKS, the way a resource server would."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in authority.jwks["keys"] if k["kid"] == kid)
    issuer = authority.issuer_v1 if audience == SERVER_ID else authority.issuer_v2
    return jwt.decode(token, jwt.PyJWK.from_dict(jwk).key, algorithms=["RS256"], audience=audience, issuer=issuer)


# --- TLS ------------------------------------------------------------------------------------------------
def test_bundle_holds_system_roots_and_the_test_ca(ca: TestCA, bundle: Path) -> None:
    text = bundle.read_bytes()
    assert text.endswith(ca.pem_bytes)
    system = system_ca_file()
    if system is not None:
        assert text.count(b"BEGIN CERTIFICATE") == system.read_bytes().count(b"BEGIN CERTIFICATE") + 1


# --- the Entra stand-in -----------------------------------------------------------------------------------
@pytest.mark.parametrize("segment", ["{tid}", "organizations", "contoso.example"])
def test_discovery_maps_every_tenant_segment(
    authority: EntraAuthority, session: requests.Session, segment: str
) -> None:
    segment = segment.format(tid=authority.tenant_id)
    doc = session.get(f"{authority.url}/{segment}/v2.0/.well-known/openid-configuration").json()
    realm = "organizations" if segment == "organizations" else authority.tenant_id
    assert doc["token_endpoint"] == f"{authority.url}/{realm}/oauth2/v2.0/token"
    assert doc["device_authorization_endpoint"] == f"{authority.url}/{realm}/oauth2/v2.0/devicecode"
    assert "form_post" in doc["response_modes_supported"]
    assert session.get(doc["jwks_uri"]).json() == authority.jwks
    assert authority.counts["discovery"] == 1 and authority.counts["jwks"] == 1


def test_device_flow_signs_in_after_approval_and_creates_an_account(
    authority: EntraAuthority, app: msal.PublicClientApplication
) -> None:
    authority.auto_approve_device_after = 0.3
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert flow["interval"] == 1 and flow["expires_in"] == 900 and len(flow["user_code"]) == 9
    assert flow["message"] == (
        f"To sign in, use a web browser to open the page {authority.url}/devicelogin "
        f"and enter the code {flow['user_code']} to authenticate."
    )
    assert authority.pending_user_codes() == [flow["user_code"]]
    result = app.acquire_token_by_device_flow(flow)
    assert result["token_source"] == "identity_provider", result  # noqa: S105 - not a password
    assert result["scope"].split()[0] == SCOPES[0]  # echoed, so MSAL's cache can hit
    counts = authority.counts
    assert counts["token.device_code"] == 2  # one authorization_pending, then the tokens
    assert counts["sign_ins"] == 1 and counts["devicecode"] == 1
    [account] = app.get_accounts()
    assert account["home_account_id"] == f"{authority.user.oid}.{authority.tenant_id}"
    assert account["username"] == authority.user.upn
    cached = app.acquire_token_silent_with_error(SCOPES, account)
    assert cached is not None and cached["token_source"] == "cache"  # noqa: S105 - not a password


def test_device_code_waits_for_the_scripted_user(authority: EntraAuthority, session: requests.Session) -> None:
    authority.auto_approve_device_after = None
    base = f"{authority.url}/organizations/oauth2/v2.0"
    flow = session.post(f"{base}/devicecode", data={"client_id": CLIENT_ID, "scope": SCOPES[0]}).json()
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": CLIENT_ID,
            "device_code": flow["device_code"]}
    pending = session.post(f"{base}/token", data=poll)
    assert pending.status_code == 400
    body = pending.json()
    assert body["error"] == "authorization_pending" and body["error_codes"] == [70016]
    assert body["error_description"].startswith("AADSTS70016: ") and "\r\nTrace ID: " in body["error_description"]
    assert session.get(f"{authority.url}/devicelogin", params={"code": flow["user_code"]}).status_code == 200
    assert session.post(f"{base}/token", data=poll).status_code == 200
    assert session.post(f"{base}/token", data=poll).json()["error"] == "invalid_grant"  # single use
    assert authority.counts["sign_ins"] == 1


def test_tokens_carry_entra_claims(authority: EntraAuthority, app: msal.PublicClientApplication) -> None:
    authority.user = TestUser("sam@contoso.example", "11111111-2222-4333-8444-555555555555", "Sam Lee", ["g-1"])
    authority.set_access_token_lifetime(1234)
    result = device_sign_in(app)
    claims = claims_of(result["access_token"], authority, SERVER_ID)
    assert claims["iss"] == f"https://sts.windows.net/{authority.tenant_id}/"
    assert (claims["appid"], claims["tid"], claims["ver"], claims["scp"]) == (
        CLIENT_ID, authority.tenant_id, "1.0", "user.read")
    assert (claims["oid"], claims["upn"], claims["unique_name"], claims["name"], claims["groups"]) == (
        "11111111-2222-4333-8444-555555555555", "sam@contoso.example", "sam@contoso.example", "Sam Lee", ["g-1"])
    assert claims["exp"] - claims["iat"] == 1234 == result["expires_in"]
    assert claims["nbf"] <= claims["iat"] <= time.time()
    id_claims = claims_of(result["id_token"], authority, CLIENT_ID)
    assert id_claims["iss"] == authority.issuer_v2 == f"{authority.url}/{authority.tenant_id}/v2.0"
    assert (id_claims["preferred_username"], id_claims["oid"], id_claims["tid"]) == (
        "sam@contoso.example", claims["oid"], authority.tenant_id)


def test_force_refresh_rotates_the_refresh_token(
    authority: EntraAuthority, app: msal.PublicClientApplication, session: requests.Session
) -> None:
    authority._state.single_use_refresh_tokens = True
    first = device_sign_in(app)
    [account] = app.get_accounts()
    refreshed = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert refreshed is not None and refreshed["token_source"] == "identity_provider", refreshed  # noqa: S105
    assert refreshed["access_token"] != first["access_token"]
    assert authority.counts["refreshes"] == 1 and authority.counts["token.refresh_token"] == 1
    replay = session.post(
        f"{authority.authority_url}/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": first["refresh_token"]},
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert authority.counts["refreshes"] == 1


def test_revoked_refresh_token_fails_with_aadsts(
    authority: EntraAuthority, app: msal.PublicClientApplication
) -> None:
    device_sign_in(app)
    [account] = app.get_accounts()
    assert authority.revoke_refresh_tokens() == 1
    result = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert result is not None and result["error"] == "invalid_grant", result
    assert result["error_codes"] == [50173]
    assert result["error_description"].startswith("AADSTS50173: The provided grant has expired")
    assert authority.counts["refreshes"] == 0


def test_authorization_code_needs_pkce_and_is_single_use(
    authority: EntraAuthority, session: requests.Session
) -> None:
    verifier = "v" * 50
    challenge = jwt.utils.base64url_encode(hashlib.sha256(verifier.encode()).digest()).decode()
    redirect = "http://localhost:5555"
    page = session.get(f"{authority.url}/common/oauth2/v2.0/authorize", params={
        "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect, "scope": SCOPES[0] + " openid",
        "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256", "response_mode": "form_post",
    })
    form = browser.FormParser()
    form.feed(page.text)
    assert (form.action, form.method, form.fields["state"]) == (redirect, "post", "s1")
    assert json.loads(jwt.utils.base64url_decode(form.fields["client_info"]))["uid"] == authority.user.oid
    token_url = f"{authority.url}/common/oauth2/v2.0/token"
    redeem = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": form.fields["code"],
              "redirect_uri": redirect, "code_verifier": "w" * 50}
    assert session.post(token_url, data=redeem).json()["error_codes"] == [501481]
    assert session.post(token_url, data={**redeem, "code_verifier": verifier}).status_code == 200
    assert session.post(token_url, data={**redeem, "code_verifier": verifier}).json()["error_codes"] == [54005]
    assert authority.counts["sign_ins"] == 1 and authority.counts["token.authorization_code"] == 3


def test_injected_fault_answers_once(authority: EntraAuthority, session: requests.Session) -> None:
    authority.fail_next("/oauth2/v2.0/devicecode", 503, headers={"Retry-After": "7"})
    url = f"{authority.authority_url}/oauth2/v2.0/devicecode"
    failed = session.post(url, data={"client_id": CLIENT_ID, "scope": SCOPES[0]})
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "7"
    assert failed.json()["error"] == "temporarily_unavailable"
    assert session.post(url, data={"client_id": CLIENT_ID, "scope": SCOPES[0]}).status_code == 200
    assert authority.counts["devicecode"] == 2


# --- the scripted browser ---------------------------------------------------------------------------------
# Python's webbrowser drops the Popen of a backgrounded browser while it still runs.
_POPEN_WARNING = "ignore:subprocess .* is still running:ResourceWarning"


@pytest.mark.filterwarnings(_POPEN_WARNING)
def test_interactive_sign_in_through_the_browser_script(
    authority: EntraAuthority, app: msal.PublicClientApplication, scripted_browser: Path
) -> None:
    result = app.acquire_token_interactive(SCOPES, timeout=10, prompt="select_account")
    assert "access_token" in result, result
    assert authority.counts["sign_ins"] == 1 and authority.counts["authorize"] == 1
    params = authority.last_authorize_params()
    assert params["response_mode"] == "form_post" and params["code_challenge_method"] == "S256"
    assert params["redirect_uri"].startswith("http://localhost:")
    host = authority.url.removeprefix("https://")
    assert scripted_browser.read_text().splitlines() == [f"{host}/{authority.tenant_id}/oauth2/v2.0/authorize"]
    [account] = app.get_accounts()
    assert account["username"] == authority.user.upn


@pytest.mark.filterwarnings(_POPEN_WARNING)
def test_denied_interactive_sign_in_reports_access_denied(
    authority: EntraAuthority, app: msal.PublicClientApplication, scripted_browser: Path, tmp_path: Path
) -> None:
    (tmp_path / "browser.control").write_text("deny\n")
    result = app.acquire_token_interactive(SCOPES, timeout=10)
    assert result.get("error") == "access_denied", result
    assert authority.counts["sign_ins"] == 0 and authority.counts["authorize"] == 1
    assert not app.get_accounts()


# --- the API-server stand-in with the real kubectl ---------------------------------------------------------
def run_kubectl(
    tmp_path: Path, apiserver: ApiServer, token: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl with a kubeconfig holding ``token``; HOME and KUBECONFIG stay in tmp_path."""
    if KUBECTL is None:
        pytest.skip("kubectl is not on PATH")
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig", token)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=30, check=False)


def test_kubectl_get_pods_with_a_token_from_msal(
    tmp_path: Path, apiserver: ApiServer, app: msal.PublicClientApplication
) -> None:
    token = device_sign_in(app)["access_token"]
    run = run_kubectl(tmp_path, apiserver, token, "get", "pods")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "hello-kubetray" in run.stdout and "Running" in run.stdout
    assert apiserver.counts["unauthorized"] == 0 and apiserver.counts["ok"] >= 1
    assert set(apiserver.tokens_seen) == {hashlib.sha256(token.encode()).hexdigest()}


def test_kubectl_auth_whoami_shows_the_upn(
    tmp_path: Path, apiserver: ApiServer, authority: EntraAuthority
) -> None:
    token = authority.issue_access_token(CLIENT_ID, SCOPES[0])
    run = run_kubectl(tmp_path, apiserver, token, "auth", "whoami", "-o", "json")
    assert run.returncode == 0, run.stderr
    user_info = json.loads(run.stdout)["status"]["userInfo"]
    assert user_info["username"] == authority.user.upn
    assert user_info["uid"] == authority.user.oid
    assert user_info["groups"] == [*authority.user.groups, "system:authenticated"]


def _foreign_key_token(authority: EntraAuthority) -> str:
    good = jwt.decode(authority.issue_access_token(CLIENT_ID, SCOPES[0]), options={"verify_signature": False})
    return SigningKey.generate().sign(good)


@pytest.mark.parametrize(
    ("case", "make_token", "reason"),
    [
        ("wrong audience", lambda a: a.issue_access_token(CLIENT_ID, SCOPES[0], aud="api://other"), "Audience"),
        ("expired", lambda a: a.issue_access_token(CLIENT_ID, SCOPES[0], lifetime=-60), "expired"),
        ("foreign client", lambda a: a.issue_access_token("someone-else", SCOPES[0]), "not allowed"),
        ("unknown key", _foreign_key_token, "no signing key"),
    ],
)
def test_kubectl_is_refused_a_bad_token(
    tmp_path: Path, apiserver: ApiServer, authority: EntraAuthority,
    case: str, make_token: Any, reason: str,
) -> None:
    run = run_kubectl(tmp_path, apiserver, make_token(authority), "get", "pods")
    assert run.returncode != 0, f"{case}: kubectl succeeded"
    # "(Unauthorized)" with a warm discovery cache, "(the server has asked for ... credentials)" cold.
    assert "error: You must be logged in to the server" in run.stderr
    assert apiserver.counts["ok"] == 0 and apiserver.counts["unauthorized"] >= 1
    assert reason in apiserver.last_rejection


def test_new_signing_key_is_fetched_on_unknown_kid(
    tmp_path: Path, apiserver: ApiServer, authority: EntraAuthority
) -> None:
    first = run_kubectl(tmp_path, apiserver, authority.issue_access_token(CLIENT_ID, SCOPES[0]), "get", "pods")
    assert first.returncode == 0, first.stderr
    authority.rotate_signing_key()
    run = run_kubectl(tmp_path, apiserver, authority.issue_access_token(CLIENT_ID, SCOPES[0]), "get", "pods")
    assert run.returncode == 0, run.stderr
    assert apiserver.jwks_fetches == 2


# --- standalone mode ----------------------------------------------------------------------------------------
def _start(module: str, *args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"{module} exited with {proc.returncode} before announcing itself")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.stdout:
            proc.stdout.close()


def test_standalone_servers_work_together(tmp_path: Path) -> None:
    authority, info = _start("tests.support.authority", "--workdir", str(tmp_path))
    try:
        apiserver, api_info = _start(
            "tests.support.apiserver", "--workdir", str(tmp_path), "--jwks-url", info["jwks_url"],
            "--issuer", info["issuer_v1"], "--audience", SERVER_ID, "--client-id", CLIENT_ID,
        )
        try:
            assert api_info["ca"] == info["ca"]  # one CA in a shared workdir
            with requests.Session() as http:
                http.request = functools.partial(http.request, verify=info["ca_bundle"])  # type: ignore[method-assign]
                base = f"{info['url']}/{info['tenant_id']}/oauth2/v2.0"
                flow = http.post(f"{base}/devicecode", data={"client_id": CLIENT_ID, "scope": SCOPES[0]}).json()
                approve = http.post(f"{info['url']}/_test/approve", params={"code": flow["user_code"]})
                assert approve.json() == {"approved": True}
                tokens = http.post(f"{base}/token", data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": CLIENT_ID,
                    "device_code": flow["device_code"]}).json()
                pods = http.get(f"{api_info['url']}/api/v1/namespaces/default/pods",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
                assert pods.status_code == 200 and pods.json()["items"][0]["metadata"]["name"] == "hello-kubetray"
                assert http.get(f"{api_info['url']}/api/v1/namespaces/default/pods").status_code == 401
                counts = http.get(f"{info['url']}/_test/counts").json()
                assert counts["sign_ins"] == 1 and counts["token.device_code"] == 1
        finally:
            assert _stop(apiserver) == 0
    finally:
        assert _stop(authority) == 0
