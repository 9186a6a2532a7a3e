"""Entra's non-interactive modes end to end: kubectl → shim → daemon → test authority (or MSI / az).

spn (secret, PEM certificate with its chain, PFX), ropc, workload identity with a rotating token file,
managed identity through an App Service-style endpoint on 127.0.0.1, and azurecli with a stand-in az.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from tests.support import fake_cli
from tests.support._http import RigHandler, TLSHTTPServer
from tests.support.apiserver import ApiServer
from tests.support.authority import EntraAuthority
from tests.support.rig import CLIENT_ID, SERVER_ID, Rig
from tests.support.rig_fixtures import AUTHORITIES
from tests.support.tls import TestCA

pytestmark = pytest.mark.e2e

SP_ID = "3f0c5a9e-2b7d-4c1e-9a8f-6d5e4c3b2a19"
SECRET = "kubetray-test-secret-0f9e8d7c"  # noqa: S105 - a test credential
PASSWORD = "kubetray-test-password-1a2b3c"  # noqa: S105


@pytest.fixture
def erig(desktop_session: object, ca: TestCA, tmp_path: Path) -> Iterator[Rig]:
    """A rig whose API server accepts app tokens too (username from ``oid``, any client)."""
    env = dict(desktop_session.env)  # type: ignore[attr-defined]
    authority = EntraAuthority(ca, tmp_path / "authority").start()
    AUTHORITIES.append(authority)
    apiserver = ApiServer(ca, tmp_path / "apiserver", jwks_url=authority.jwks_url, issuer=authority.issuer_v1,
                          audience=SERVER_ID, username_claim="oid",
                          ca_bundle_for_jwks=ca.bundle(tmp_path / "apiserver-tls")).start()
    the_rig = Rig(root=tmp_path, base_env=env, authority=authority, apiserver=apiserver, ca=ca)
    try:
        yield the_rig
    finally:
        the_rig.stop_daemon()
        apiserver.stop()
        authority.stop()


def _kubeconfig(rig: Rig, login: str, *extra: str, client_id: str = SP_ID) -> None:
    rig.write_kubeconfig(login, *extra)
    path = rig.root / "kubeconfig"
    config = json.loads(path.read_text())
    args = config["users"][0]["user"]["exec"]["args"]
    args[args.index("--client-id") + 1] = client_id
    path.write_text(json.dumps(config))


def _ok(rig: Rig, **env: str) -> None:
    proc = rig.run("kubectl", "get", "pods", **env)
    assert proc.returncode == 0, proc.stderr.decode()


def _no_secret_at_rest(rig: Rig, *secrets: str) -> None:
    """Secrets stay in the daemon's memory: not in the registry, logs, status output or any file."""
    texts = [p.read_bytes() for p in rig.root.rglob("*") if p.is_file() and p.name != "kubeconfig"
             and "authority" not in p.parts and not p.name.endswith(".pem")]
    texts.append(rig.kubetray("status", "--json").stdout)
    for secret in secrets:
        assert not any(secret.encode() in t for t in texts)


def _certificate(tmp: Path, ca_chain: bool) -> tuple[rsa.RSAPrivateKey, x509.Certificate, list[x509.Certificate]]:
    now = dt.datetime.now(dt.timezone.utc)
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubetray test issuing CA")])
    issuer = (x509.CertificateBuilder().subject_name(issuer_name).issuer_name(issuer_name)
              .public_key(issuer_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(issuer_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sp")]))
            .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .sign(issuer_key, hashes.SHA256()))
    return key, leaf, [issuer] if ca_chain else []


def test_spn_with_a_client_secret_from_the_environment(erig: Rig) -> None:
    erig.authority.register_client_secret(SP_ID, SECRET)
    _kubeconfig(erig, "spn", client_id="placeholder")  # AZURE_CLIENT_ID overrides the flag, as in kubelogin
    _ok(erig, AZURE_CLIENT_ID=SP_ID, AZURE_CLIENT_SECRET=SECRET)
    _ok(erig, AZURE_CLIENT_ID=SP_ID, AZURE_CLIENT_SECRET=SECRET)
    assert erig.authority.counts["token.client_credentials"] == 1  # the second call came from memory
    assert erig.apiserver.counts["ok"] >= 2
    _no_secret_at_rest(erig, SECRET)


def test_spn_with_a_wrong_secret_fails_with_the_authority_reason_and_no_secret(erig: Rig) -> None:
    erig.authority.register_client_secret(SP_ID, SECRET)
    _kubeconfig(erig, "spn", "--client-secret", "not-the-secret")
    proc = erig.kubectl("get", "pods")
    assert proc.returncode != 0
    assert b"7000215" in proc.stderr
    assert b"not-the-secret" not in proc.stderr


@pytest.mark.parametrize("form", ["pem", "pfx"])
def test_spn_with_a_certificate_sends_its_chain_and_the_authority_checks_the_signature(
    erig: Rig, tmp_path: Path, form: str
) -> None:
    key, leaf, chain = _certificate(tmp_path, ca_chain=True)
    erig.authority.register_client_certificate(SP_ID, leaf.public_bytes(serialization.Encoding.PEM))
    if form == "pem":
        path = tmp_path / "sp.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
                         + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [leaf, *chain]))
        extra: tuple[str, ...] = ("--client-certificate", str(path))
    else:
        path = tmp_path / "sp.pfx"
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            b"sp", key, leaf, chain, serialization.BestAvailableEncryption(PASSWORD.encode())))
        extra = ("--client-certificate", path.name, "--client-certificate-password", PASSWORD)
    _kubeconfig(erig, "spn", *extra)
    proc = erig.run("kubectl", "get", "pods")  # relative PFX path: resolved against kubectl's cwd
    if form == "pfx":
        proc = erig.run("sh", "-c", f"cd {tmp_path} && kubectl get pods")
    assert proc.returncode == 0, proc.stderr.decode()
    headers = erig.authority.client_assertion_headers()
    assert headers and len(headers[-1]["x5c"]) == 2  # leaf and its issuer
    _no_secret_at_rest(erig, PASSWORD)


def test_a_certificate_the_authority_does_not_know_is_refused(erig: Rig, tmp_path: Path) -> None:
    key, leaf, _ = _certificate(tmp_path, ca_chain=False)
    _other_key, other, _ = _certificate(tmp_path, ca_chain=False)
    erig.authority.register_client_certificate(SP_ID, other.public_bytes(serialization.Encoding.PEM))
    path = tmp_path / "sp.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + leaf.public_bytes(serialization.Encoding.PEM))
    _kubeconfig(erig, "spn", "--client-certificate", str(path))
    proc = erig.kubectl("get", "pods")
    assert proc.returncode != 0 and b"700027" in proc.stderr


def test_workload_identity_rereads_the_rotating_token_file(erig: Rig, tmp_path: Path) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("assertion-one")
    erig.authority.accept_federated_assertion(SP_ID, "assertion-one")
    erig.authority.set_access_token_lifetime(30)  # so the schedule refreshes within the test
    _kubeconfig(erig, "workloadidentity", client_id="ignored")
    env = {"AZURE_CLIENT_ID": SP_ID, "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
           "AZURE_TENANT_ID": erig.authority.tenant_id, "AZURE_AUTHORITY_HOST": erig.authority.url + "/"}
    _ok(erig, **env)
    token_file.write_text("assertion-two")  # the platform rotated it
    erig.authority.accept_federated_assertion(SP_ID, "assertion-two")
    erig.authority.revoke_federated_assertion(SP_ID, "assertion-one")
    deadline = time.monotonic() + 60
    while erig.authority.counts["token.client_credentials"] < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert erig.authority.counts["token.client_credentials"] >= 2
    assert erig.authority.counts["sign_ins"] >= 2  # the refresh used the new assertion and succeeded
    _ok(erig, **env)


def test_ropc_signs_in_with_the_password_and_after_a_restart_refreshes_without_it(
    erig: Rig, userrealm_443: None
) -> None:
    erig.authority.set_password(erig.authority.user.upn, PASSWORD)
    _kubeconfig(erig, "ropc", "--username", erig.authority.user.upn, client_id=CLIENT_ID)
    _ok(erig, AAD_USER_PRINCIPAL_PASSWORD=PASSWORD)
    assert erig.authority.counts["token.password"] == 1
    erig.stop_daemon()  # the password is gone with it; MSAL's cache is in the keyring
    _ok(erig)
    assert erig.authority.counts["token.password"] == 1  # served from the cache, not a new password grant
    _no_secret_at_rest(erig, PASSWORD)


def test_ropc_is_marked_deprecated_in_help(erig: Rig) -> None:
    proc = erig.run(str(Path(sys.executable).parent / "kubetray-shim"), "--help")
    assert b"ropc" in proc.stdout and b"deprecated" in proc.stdout


class _MsiHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        server: _MsiServer = self.server  # type: ignore[assignment]
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        server.requests.append(query)
        if self.headers.get("X-IDENTITY-HEADER") != server.header:
            body, code = {"statusCode": 400, "message": "missing header"}, 400
        else:
            reply = server.authority.issue_app_token(query.get("client_id", "system"), query["resource"] + "/.default")
            body = {"access_token": reply["access_token"], "expires_on": str(int(time.time()) + 3600),
                    "resource": query["resource"], "token_type": "Bearer"}
            code = 200
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _MsiServer(ThreadingHTTPServer):
    def __init__(self, authority: EntraAuthority) -> None:
        super().__init__(("127.0.0.1", 0), _MsiHandler)
        self.authority, self.header, self.requests = authority, "msi-header-value", []  # type: ignore[var-annotated]


def test_managed_identity_through_an_app_service_endpoint(erig: Rig) -> None:
    server = _MsiServer(erig.authority)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        erig.env.update(IDENTITY_ENDPOINT=f"http://127.0.0.1:{server.server_port}/msi/token",
                        IDENTITY_HEADER=server.header)  # forwarded with each call; the daemon's env lacks them
        _kubeconfig(erig, "msi")
        _ok(erig)
        _ok(erig)
        assert len(server.requests) == 1
        assert server.requests[0]["resource"] == SERVER_ID and server.requests[0]["client_id"] == SP_ID
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def fake_az(erig: Rig, tmp_path: Path) -> Path:
    """A directory holding the stand-in ``az`` (its calls logged to az.log there), whose service principal
    the rig's authority knows."""
    erig.authority.register_client_secret(SP_ID, SECRET)
    token = fake_cli.client_credentials(SP_ID, SECRET, SERVER_ID, f"{erig.authority.authority_url}/oauth2/v2.0/token")
    answer = {"tenant": erig.authority.tenant_id, "tokenType": "Bearer"}
    return fake_cli.install(
        tmp_path / "az-bin", "az", doc="A stand-in Azure CLI: a real client-credentials token from the test authority.",
        logged_out=fake_cli.AZ_LOGGED_OUT,
        body=token + f'print(json.dumps({{**{answer!r}, "accessToken": reply["access_token"], '
                     '"expires_on": int(time.time()) + 20}))\n')


def test_azurecli_passes_tenant_and_subscription_and_az_logout_takes_effect(erig: Rig, tmp_path: Path) -> None:
    bin_dir = fake_az(erig, tmp_path)
    erig.env["PATH"] = f"{bin_dir}{os.pathsep}{erig.env['PATH']}"
    _kubeconfig(erig, "azurecli", "--subscription", "sub-1234")
    _ok(erig)
    logged = (bin_dir / "az.log").read_text().split()
    assert logged[:2] == ["account", "get-access-token"]
    assert logged[logged.index("--resource") + 1] == SERVER_ID
    assert logged[logged.index("--tenant") + 1] == erig.authority.tenant_id
    assert logged[logged.index("--subscription") + 1] == "sub-1234"
    (bin_dir / "logged-out").touch()
    # The 20 s token runs out; no later one may be served. (The timing, the az calls and the last-resort
    # window run on a fake clock in tests/integration/test_headless_clock.py.)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        proc = erig.kubectl("get", "pods")
        if proc.returncode != 0:
            assert b"az login" in proc.stderr
            break
        time.sleep(2)
    else:
        pytest.fail("kubetray kept serving the Azure CLI's token after az logout and its expiry")


class _UserRealm(RigHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_json(404, {"error": "not found"})


class _Port443(TLSHTTPServer):
    def __init__(self, context: object) -> None:
        self.tls_context = context  # type: ignore[assignment]
        self.owner = None
        ThreadingHTTPServer.__init__(self, ("127.0.0.1", 443), _UserRealm)


@pytest.fixture
def userrealm_443(ca: TestCA, tmp_path: Path) -> Iterator[None]:
    """MSAL's ROPC asks https://<authority host>/common/userrealm/<user> on port 443; answer 404 there.

    Binding 443 needs root; another test run may hold it for a moment, so wait a little, then skip.
    """
    if os.geteuid() != 0:
        pytest.skip("binding 127.0.0.1:443 for MSAL's user-realm lookup needs root")
    context = ca.server_context(tmp_path / "userrealm", "userrealm")
    deadline = time.monotonic() + 60
    while True:
        try:
            server = _Port443(context)
            break
        except OSError:
            if time.monotonic() > deadline:
                pytest.skip("127.0.0.1:443 stayed busy (another test run?)")
            time.sleep(1)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
