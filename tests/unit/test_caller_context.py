"""The caller's context: what the shim forwards, how it travels with one request to that profile's
source and nowhere else, how logout empties it, and what keeps profiles apart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from broker.core.errors import InvalidArguments, LoginFailed, LoginRequired
from broker.core.model import INSECURE_WARNING, NO_CONTEXT, RequestContext, Secrets, Token
from broker.core.service import TokenService
from broker.core.state import ProfileState, ProfileStatus
from broker.execplugin.kubelogin_args import parse_exec
from broker.ipc.handler import Handler
from broker.sources import _oidc
from broker.sources._azurecli import AzureCliSource
from broker.sources._managed_identity import ManagedIdentitySource, _request
from broker.sources._msal import MsalSource, check_account
from shim.main import encode_request
from tests.support.fakes import FakeClock, FakeSource, MemoryRegistry, ThreadSubmit, profile

BASE = ["get-token", "--server-id", "srv", "--client-id", "cli", "--tenant-id", "t1"]
OIDC = ["get-token", "--oidc-issuer-url", "https://idp.example/realm", "--oidc-client-id", "kube"]


# -- what the shim forwards ----------------------------------------------------------------------
def test_the_shim_forwards_the_documented_variables_and_no_other_azure_name() -> None:
    environ = {
        "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s", "AAD_LOGIN_METHOD": "spn", "IDENTITY_ENDPOINT": "e",
        "IDENTITY_HEADER": "h", "PATH": "/p", "HTTPS_PROXY": "http://proxy", "no_proxy": "local",
        "REQUESTS_CA_BUNDLE": "/ca", "AZURE_CONFIG_DIR": "/az", "ARM_CLIENT_ID": "arm", "SYSTEM_ACCESSTOKEN": "t",
        "AZURE_OPENAI_API_KEY": "sk-unrelated", "AZURE_STORAGE_CONNECTION_STRING": "conn", "ARM_ACCESS_KEY": "k",
        "KUBELOGIN_LIVETEST_TENANT_ID": "x", "HOME": "/home/u", "LD_PRELOAD": "/evil.so", "PYTHONPATH": "/x",
    }
    line = encode_request(["get-token"], environ)
    env = json.loads(line)["env"]
    assert set(env) == {"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AAD_LOGIN_METHOD", "IDENTITY_ENDPOINT",
                        "IDENTITY_HEADER", "PATH", "HTTPS_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE",
                        "AZURE_CONFIG_DIR", "ARM_CLIENT_ID", "SYSTEM_ACCESSTOKEN"}
    for value in (b"sk-unrelated", b"conn", b"/evil.so", b"/home/u"):
        assert value not in line


# -- the handler: context per call, nothing secret kept ------------------------------------------
@pytest.fixture
def served() -> Iterator[tuple[Handler, FakeSource, TokenService]]:
    clock = FakeClock()
    source = FakeSource(clock)
    source.signed_in = True
    submit = ThreadSubmit()
    service = TokenService(source=source, clock=clock, submit=submit, registry=MemoryRegistry(), rand=lambda: 0.5)
    yield Handler(service=service), source, service
    submit.close()


def _ask(handler: Handler, **request: Any) -> list[dict[str, Any]]:
    lines: list[bytes] = []

    async def go() -> None:
        await handler.handle(json.dumps({"v": 1, **request}).encode(), lines.append)
        await asyncio.sleep(0)  # progress relayed with call_soon_threadsafe

    asyncio.run(go())
    return [json.loads(line) for line in lines]


def test_each_call_context_reaches_only_its_own_profiles_source_and_unlisted_names_are_dropped(
    served: tuple[Handler, FakeSource, TokenService],
) -> None:
    handler, source, service = served
    spn = [*BASE, "-l", "spn"]
    a = _ask(handler, op="exec", argv=spn, env={"AZURE_CLIENT_SECRET": "secret-a", "HTTPS_PROXY": "http://pa",
                                              "AZURE_OPENAI_API_KEY": "sk-a"}, cwd="/a")
    b = _ask(handler, op="exec", argv=[*spn, "--client-id", "other"],
             env={"AZURE_CLIENT_SECRET": "secret-b", "HTTPS_PROXY": "http://pb"}, cwd="/b")
    assert a[-1]["type"] == b[-1]["type"] == "credential"
    first, second = source.contexts
    assert (first.secrets.client_secret, first.get("HTTPS_PROXY"), first.cwd) == ("secret-a", "http://pa", "/a")
    assert (second.secrets.client_secret, second.get("HTTPS_PROXY"), second.cwd) == ("secret-b", "http://pb", "/b")
    assert "AZURE_OPENAI_API_KEY" not in first.env  # an older or foreign client's extra names never get in
    assert len({v.key for v in service.snapshot()}) == 2


def test_no_secret_of_a_call_is_kept_in_a_cache_and_logout_empties_the_profiles_context(
    served: tuple[Handler, FakeSource, TokenService],
) -> None:
    handler, source, service = served
    argv = [*BASE, "-l", "spn", "--client-secret", "argv-secret-123"]
    for _ in range(3):
        assert _ask(handler, op="exec", argv=argv, env={"AZURE_PASSWORD": "env-secret-456"})[-1]["type"] == "credential"
    memo = handler._memo  # noqa: SLF001 - what the hot-path cache holds is the point of the test
    assert len(memo) == 1 and "argv-secret-123" not in repr(list(memo.values()))
    assert not any(b"argv-secret-123" in key for key in memo)
    assert len(source.contexts) == 1  # the later calls were served from memory, without argparse
    key = service.snapshot()[0].key
    assert _ask(handler, op="logout", key=key)[0]["type"] == "signed_out"
    assert not memo and source.signed_out
    with service._lock:  # noqa: SLF001
        state = service._states[key]  # noqa: SLF001
        assert state.context is NO_CONTEXT and state.token is None
    service.run_due()  # nothing scheduled for a signed-out profile, and no secret to use if it were
    assert len(source.contexts) == 1


def test_a_scheduled_refresh_uses_the_latest_callers_context_of_that_profile() -> None:
    clock = FakeClock()
    source = FakeSource(clock)
    source.signed_in = True
    submit = ThreadSubmit()
    service = TokenService(source=source, clock=clock, submit=submit, rand=lambda: 0.5)
    try:
        p = profile(login="spn")
        service.get_token(p, RequestContext({"PATH": "/one"}, "/", Secrets(client_secret="s1")),
                          person_present=False).result(5)
        clock.advance(3500)
        service.run_due()
        _wait(lambda: len(source.contexts) == 2)
        refresh = source.contexts[1]
        assert refresh.get("PATH") == "/one" and refresh.secrets.client_secret == "s1"
    finally:
        submit.close()


def _wait(predicate: Any, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


# -- profiles never weaken each other ------------------------------------------------------------
def _old_key(p: Any) -> str:
    """The key formula before the partition (what existing profiles.json files hold)."""
    parts = [p.authority.rstrip("/").lower(), p.client_id, *p.scopes]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def test_tls_trust_and_the_login_hint_join_the_profile_key_and_the_cache_partition() -> None:
    plain = parse_exec(OIDC).profile
    insecure = parse_exec([*OIDC, "--insecure-skip-tls-verify"]).profile
    with_ca = parse_exec([*OIDC, "--certificate-authority-data", "Zm9v"]).profile
    assert len({plain.key, insecure.key, with_ca.key}) == 3
    assert len({plain.cache_name, insecure.cache_name, with_ca.cache_name}) == 3
    alice = parse_exec([*BASE, "--login-hint", "alice@contoso.example"]).profile
    admin = parse_exec([*BASE, "--login-hint", "Alice-Admin@contoso.example"]).profile
    bare = parse_exec(BASE).profile
    assert len({alice.key, admin.key, bare.key}) == 3 and len({alice.cache_name, admin.cache_name}) == 2
    assert parse_exec([*BASE, "--login-hint", "ALICE@contoso.example"]).profile.key == alice.key
    assert bare.key == _old_key(bare)  # nothing set: the key existing registries hold is unchanged


def test_an_insecure_kubeconfig_never_rewrites_the_verified_profiles_record() -> None:
    clock = FakeClock()
    source = FakeSource(clock)
    source.signed_in = True
    submit, registry = ThreadSubmit(), MemoryRegistry()
    service = TokenService(source=source, clock=clock, submit=submit, registry=registry, rand=lambda: 0.5)
    try:
        secure = parse_exec(OIDC).profile
        insecure = parse_exec([*OIDC, "--insecure-skip-tls-verify"]).profile
        service.get_token(secure, NO_CONTEXT, person_present=False).result(5)
        service.get_token(insecure, NO_CONTEXT, person_present=False).result(5)
        clock.advance(3500)
        service.run_due()
        _wait(lambda: len(source.silent_calls) == 4)
        records = {r["key"]: r for r in registry.records}
        assert records[secure.key]["insecure_skip_tls_verify"] is False
        assert records[insecure.key]["insecure_skip_tls_verify"] is True
        restored = ProfileState.from_record(records[secure.key]).profile
        assert restored == secure and restored.key == secure.key
    finally:
        submit.close()


def test_insecure_skip_tls_verify_is_warned_on_every_sign_in_and_refresh(caplog: pytest.LogCaptureFixture) -> None:
    insecure = parse_exec([*OIDC, "--insecure-skip-tls-verify"]).profile
    said: list[str] = []
    with caplog.at_level(logging.WARNING):
        _oidc._warn_if_insecure(insecure, None)  # noqa: SLF001 - a refresh (nobody waiting)
        _oidc._warn_if_insecure(insecure, said.append)  # noqa: SLF001 - a sign-in
        _oidc._warn_if_insecure(parse_exec(OIDC).profile, said.append)  # noqa: SLF001
    assert sum("insecure-skip-tls-verify" in r.getMessage() for r in caplog.records) == 2
    assert said == [INSECURE_WARNING]


def _token(account: str) -> Token:
    return Token(access_token="t", expires_on=1.0, obtained_at=0.0, account=account)


def test_a_token_of_another_account_is_never_served_to_a_hinted_profile() -> None:
    alice = parse_exec([*BASE, "--login-hint", "alice@contoso.example"]).profile
    assert check_account(alice, _token("Alice@Contoso.example")).account == "Alice@Contoso.example"
    with pytest.raises(LoginFailed, match="--login-hint"):
        check_account(alice, _token("mallory@contoso.example"))
    assert check_account(parse_exec(BASE).profile, _token("anyone@x")).account == "anyone@x"


class _Accounts:
    """The part of an MSAL app that account selection reads."""

    def __init__(self, *names: str) -> None:
        self.accounts = [{"username": n, "home_account_id": f"{i}.tid"} for i, n in enumerate(names)]

    def get_accounts(self, username: str | None = None) -> list[dict[str, str]]:
        return [a for a in self.accounts if username is None or a["username"].lower() == username.lower()]


def test_silent_acquisition_picks_the_hinted_account_and_never_guesses_among_several() -> None:
    app: Any = type("App", (), {"app": _Accounts("alice@c", "admin@c")})()
    hinted = parse_exec([*BASE, "--login-hint", "admin@c"]).profile
    assert MsalSource._account(app, hinted, "")["username"] == "admin@c"  # noqa: SLF001
    assert MsalSource._account(app, hinted, "0.tid")["username"] == "admin@c"  # noqa: SLF001 - not alice's id
    bare = parse_exec(BASE).profile
    assert MsalSource._account(app, bare, "") is None  # noqa: SLF001 - two accounts, none named: sign in
    assert MsalSource._account(app, bare, "1.tid")["username"] == "admin@c"  # noqa: SLF001


# -- azurecli and msi read the caller's environment ----------------------------------------------
def test_azurecli_looks_for_az_on_the_callers_path_and_runs_it_with_the_callers_config_dir() -> None:
    seen: dict[str, Any] = {}

    def which(name: str, path: str) -> str | None:
        seen["path"] = path
        return "/caller/bin/az" if "/caller/bin" in path.split(":") else None

    def run(argv: Sequence[str], timeout: float, env: Any) -> subprocess.CompletedProcess[bytes]:
        seen["argv"], seen["env"] = list(argv), dict(env)
        return subprocess.CompletedProcess(list(argv), 0, b'{"accessToken": "at", "expires_on": 1800000600}', b"")

    az = AzureCliSource(FakeClock(), run=run, which=which, base_env={"PATH": "/daemon/bin", "HOME": "/h"})
    p = parse_exec(["get-token", "-l", "azurecli", "--server-id", "srv"], {"AZURE_CONFIG_DIR": "/cfg"}).profile
    ctx = RequestContext({"PATH": "/caller/bin:/usr/bin", "AZURE_CONFIG_DIR": "/cfg"}, "/")
    assert az.acquire_silent(p, ctx, force_refresh=False).access_token == "at"
    assert seen["argv"][0] == "/caller/bin/az" and seen["path"] == "/caller/bin:/usr/bin"
    assert seen["env"]["AZURE_CONFIG_DIR"] == "/cfg" and seen["env"]["PATH"] == "/caller/bin:/usr/bin"
    with pytest.raises(InvalidArguments, match="kubectl's PATH"):
        az.acquire_silent(p, RequestContext({"PATH": "/usr/bin"}, "/"), force_refresh=False)
    with pytest.raises(LoginRequired):  # no caller yet (a warm-up after a restart): never the daemon's PATH
        az.acquire_silent(p, NO_CONTEXT, force_refresh=False)
    other = parse_exec(["get-token", "-l", "azurecli", "--server-id", "srv"], {"AZURE_CONFIG_DIR": "/other"})
    assert other.profile.key != p.key  # another az login is another profile


def test_msi_asks_the_endpoint_the_callers_environment_names() -> None:
    user_assigned = parse_exec(["get-token", "-l", "msi", "--server-id", "srv", "--client-id", "mi"]).profile
    url, query, headers = _request(user_assigned, {"IDENTITY_ENDPOINT": "http://127.0.0.1:9/t",
                                                   "IDENTITY_HEADER": "h"}) or ("", {}, {})
    assert (url, query["api-version"], query["client_id"], headers["X-IDENTITY-HEADER"]) == (
        "http://127.0.0.1:9/t", "2019-08-01", "mi", "h")
    url, query, headers = _request(user_assigned, {"MSI_ENDPOINT": "http://ml/t", "MSI_SECRET": "s"}) or ("", {}, {})
    assert (url, query["clientid"], headers["secret"]) == ("http://ml/t", "mi", "s")
    url, query, headers = _request(user_assigned, {}) or ("", {}, {})
    assert url == "http://169.254.169.254/metadata/identity/oauth2/token" and headers == {"Metadata": "true"}
    assert _request(user_assigned, {"IDENTITY_ENDPOINT": "http://arc", "IMDS_ENDPOINT": "http://imds"}) is None


def test_msi_on_arc_with_an_endpoint_the_daemon_does_not_have_says_where_to_start_it() -> None:
    source = ManagedIdentitySource(FakeClock(), http_client_factory=lambda network: None, daemon_env={})
    p = parse_exec(["get-token", "-l", "msi", "--server-id", "srv"]).profile
    ctx = RequestContext({"IDENTITY_ENDPOINT": "http://arc", "IMDS_ENDPOINT": "http://imds"}, "/")
    with pytest.raises(InvalidArguments, match="daemon's environment"):
        source.acquire_silent(p, ctx, force_refresh=False)


def test_status_states_are_an_enum_that_serialises_as_before() -> None:
    assert json.dumps({"state": ProfileStatus.SIGN_IN_REQUIRED}) == '{"state": "sign_in_required"}'


@pytest.mark.parametrize("during", ["refresh", "sign_in"])
def test_logout_wins_over_a_flight_still_running(during: str) -> None:
    import threading

    clock = FakeClock()
    source = FakeSource(clock)
    submit = ThreadSubmit()
    service = TokenService(source=source, clock=clock, submit=submit, rand=lambda: 0.5)
    try:
        p = profile()
        gate = threading.Event()
        if during == "refresh":
            source.signed_in = True
            service.get_token(p, NO_CONTEXT, person_present=False).result(5)
            source.silent_gate = gate
            running = service.refresh(p.key)
            _wait(lambda: len(source.silent_calls) == 2)
        else:
            source.sign_in_gate = gate
            running = service.login(p, RequestContext({}, "/", Secrets(password="pw")))
            _wait(lambda: source.sign_in_calls == 1)
        service.logout(p.key)
        after = service.get_token(p, NO_CONTEXT, person_present=False)  # a new flight, not the void one
        gate.set()
        with pytest.raises(LoginRequired, match="signed out"):
            running.result(5)
        with pytest.raises(LoginRequired):
            after.result(5)
        assert service.cached(p) is None
        assert [v.state for v in service.snapshot()] == [ProfileStatus.SIGN_IN_REQUIRED]
        assert source.signed_out == [p]
    finally:
        submit.close()


def test_the_insecure_warning_reaches_kubectl_once_per_sign_in(
    served: tuple[Handler, FakeSource, TokenService],
) -> None:
    handler, source, _service = served
    source.signed_in = False
    source.sign_in_message = INSECURE_WARNING  # what the OIDC source says as its sign-in starts
    replies = _ask(handler, op="exec", argv=[*OIDC, "--insecure-skip-tls-verify"], stdin_tty=True)
    progress = [r["message"] for r in replies if r["type"] == "progress"]
    assert progress.count(INSECURE_WARNING) == 1 and replies[-1]["type"] == "credential"
