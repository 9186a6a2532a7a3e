"""Remote use: telling forwarded callers apart, the local-only gate, the handler's refusals, the CLI's
text, the single-file shim and the tray's lines. Fakes at the edges; the real thing is tests/e2e/test_remote.py."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from broker.cli import remote as cli_remote
from broker.core.errors import LocalOnly, LoginFailed
from broker.core.remote import LOCAL, Caller, RemoteGate, RemoteUse, clean_origin
from broker.core.service import TokenService
from broker.core.state import ProfileView
from broker.execplugin.kubelogin_args import parse_exec
from broker.ipc import origin, peercred
from broker.ipc.handler import Handler
from broker.process import shimzip
from broker.store.local_only import JsonLocalOnlyStore
from broker.tray import presenter
from shim import main as shim_main
from tests.support.fakes import FakeClock, FakeSource, ThreadSubmit

ARGS = ["get-token", "--server-id", "srv", "--client-id", "cli", "--tenant-id", "t1"]


class MemoryKeys:
    def __init__(self, keys: list[str] | None = None) -> None:
        self.keys = list(keys or [])

    def load(self) -> list[str]:
        return list(self.keys)

    def save(self, keys: list[str]) -> None:
        self.keys = list(keys)


# -- who is calling ----------------------------------------------------------------------------------
def test_ucred_pid_is_read_from_the_kernels_struct() -> None:
    data = struct.pack("=iII", 4242, 1000, 1000)
    assert peercred.peer_pid(lambda *_: data, platform="linux") == 4242
    assert peercred.peer_pid(lambda *_: data, platform="darwin") is None  # not asked there (documented)
    with pytest.raises(peercred.PeerCredError):
        peercred.parse_ucred_pid(b"\0" * 4)


@pytest.mark.parametrize(("exe", "forwarded"), [
    ("/usr/bin/ssh", True), ("/usr/sbin/sshd", True), ("/usr/lib/openssh/sshd-session", True),
    ("/usr/bin/ssh (deleted)", True), ("/usr/bin/kubectl", False), ("/usr/bin/python3.11", False),
    ("/home/u/bin/not-ssh", False),
])
def test_a_peer_is_forwarded_when_its_executable_is_an_ssh_program(exe: str, forwarded: bool) -> None:
    name = origin.process_name(7, readlink=lambda path: exe, read_text=lambda path: "ignored")
    caller = origin.classify(7, name_of=lambda pid: name)
    assert caller.forwarded is forwarded
    assert caller.pid == 7
    assert caller.via == ("" if not forwarded else name)


def test_process_name_falls_back_to_comm_and_then_to_nothing() -> None:
    def no_link(path: str) -> str:
        raise PermissionError(path)

    assert origin.process_name(7, readlink=no_link, read_text=lambda path: "ssh\n") == "ssh"

    def no_comm(path: str) -> str:
        raise FileNotFoundError(path)

    assert origin.process_name(7, readlink=no_link, read_text=no_comm) == ""
    assert origin.classify(None) == LOCAL
    assert origin.classify(0) == LOCAL


def test_this_process_is_named_from_proc() -> None:
    if not os.path.exists("/proc/self/exe"):
        pytest.skip("no /proc here")
    assert origin.process_name(os.getpid()) == os.path.basename(os.readlink("/proc/self/exe"))
    assert origin.classify(os.getpid()).forwarded is False


def test_origin_is_cleaned_and_bounded() -> None:
    assert clean_origin("devbox.example.test") == "devbox.example.test"
    assert clean_origin("evil\x1b[31m\nhost") == "evil31mhost"
    assert clean_origin("x" * 500) == "x" * 64
    assert clean_origin(None) == clean_origin(42) == ""


# -- the gate ----------------------------------------------------------------------------------------
SSH = Caller(forwarded=True, via="ssh", pid=99)


def test_forwarded_use_is_recorded_and_local_use_is_not() -> None:
    clock = FakeClock()
    gate = RemoteGate(clock)
    gate.admit(LOCAL, "desk", "k1")
    gate.admit(SSH, "devbox", "k1")
    clock.advance(60)
    gate.admit(SSH, "", "k2")
    gate.admit(SSH, "", "k2")
    assert [(u.origin, u.profile, u.at, u.via, u.refused, u.count) for u in gate.recent()] == [
        ("unknown host", "k2", clock.t, "ssh", False, 2), ("devbox", "k1", clock.t - 60, "ssh", False, 1)]


def test_local_only_refuses_forwarded_callers_only_and_survives_a_restart() -> None:
    keys = MemoryKeys()
    gate = RemoteGate(FakeClock(), keys)
    gate.mark("k1", local_only=True)
    assert keys.keys == ["k1"]
    gate.admit(LOCAL, "desk", "k1")  # the desktop is always served
    with pytest.raises(LocalOnly, match="local-only") as refused:
        gate.admit(SSH, "devbox", "k1")
    assert refused.value.code == "local_only"
    assert gate.recent()[0].refused is True
    again = RemoteGate(FakeClock(), keys)
    with pytest.raises(LocalOnly):
        again.admit(SSH, "devbox", "k1")
    again.mark("k1", local_only=False)
    again.admit(SSH, "devbox", "k1")


def test_a_local_call_with_the_flag_marks_the_profile_and_a_remote_one_cannot_unmark_it() -> None:
    gate = RemoteGate(FakeClock(), MemoryKeys())
    with pytest.raises(LocalOnly):
        gate.admit(SSH, "devbox", "k1", local_only_flag=True)  # the flag alone refuses too
    gate.admit(LOCAL, "desk", "k1", local_only_flag=True)
    assert gate.local_only() == {"k1"}
    with pytest.raises(LocalOnly):
        gate.admit(SSH, "devbox", "k1", local_only_flag=False)  # omitting it on the remote side changes nothing


def test_the_json_store_keeps_keys_with_mode_0600(tmp_path: Path) -> None:
    store = JsonLocalOnlyStore(str(tmp_path / "state" / "remote.json"))
    assert store.load() == []
    store.save(["a", "b"])
    assert store.load() == ["a", "b"]
    assert (tmp_path / "state" / "remote.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "state" / "remote.json").write_text("not json")
    assert store.load() == []


def test_the_flag_parses_without_changing_the_profile() -> None:
    plain, flagged = parse_exec(ARGS), parse_exec([*ARGS, "--local-only"])
    assert (plain.local_only, flagged.local_only) == (False, True)
    assert plain.profile == flagged.profile  # the same sign-in: the mark lives in the daemon
    assert parse_exec([*ARGS, "--local-only=false"]).local_only is False
    oidc = parse_exec(["get-token", "--oidc-issuer-url", "https://idp.example.test", "--oidc-client-id", "c",
                       "--local-only"])
    assert oidc.local_only is True


# -- the handler -------------------------------------------------------------------------------------
def _handler(clock: FakeClock, gate: RemoteGate) -> tuple[Handler, FakeSource, ThreadSubmit]:
    source = FakeSource(clock)
    submit = ThreadSubmit()
    service = TokenService(source=source, clock=clock, submit=submit, rand=lambda: 0.5)
    return Handler(service=service, remote=gate), source, submit


def _ask(handler: Handler, request: dict[str, object], caller: Caller) -> list[dict[str, object]]:
    sent: list[bytes] = []
    asyncio.run(handler.handle(json.dumps(request).encode(), sent.append, caller))
    return [json.loads(line) for chunk in sent for line in chunk.splitlines()]


@pytest.mark.parametrize("op", ["status", "login", "logout", "refresh", "shutdown", "remote"])
def test_forwarded_callers_get_no_management_op(op: str) -> None:
    handler, _, submit = _handler(FakeClock(), RemoteGate(FakeClock()))
    try:
        (reply,) = _ask(handler, {"v": 1, "op": op, "all": True}, SSH)
        assert (reply["type"], reply["code"]) == ("error", "forbidden")
        assert "forwarded through ssh" in str(reply["message"])
    finally:
        submit.close()


def test_a_forwarded_sign_in_tells_the_remote_caller_to_look_at_the_desktop() -> None:
    clock = FakeClock()
    gate = RemoteGate(clock)
    handler, source, submit = _handler(clock, gate)
    try:
        replies = _ask(handler, {"v": 1, "op": "exec", "argv": ARGS, "exec_info": None, "origin": "devbox"}, SSH)
        messages = [r["message"] for r in replies if r["type"] == "progress"]
        assert any("came from devbox through ssh" in str(m) and "look there" in str(m) for m in messages)
        assert replies[-1]["type"] == "credential"
        assert source.sign_in_calls == 1
        local = _ask(handler, {"v": 1, "op": "exec", "argv": ARGS, "exec_info": None, "origin": "desk"}, LOCAL)
        assert [r["type"] for r in local] == ["credential"]
        (status,) = _ask(handler, {"v": 1, "op": "status"}, LOCAL)
        assert status["remote"] == {"recent": [gate.recent()[0].to_json()], "local_only": []}
        gate.mark(parse_exec(ARGS).profile.key, local_only=True)
        (refused,) = _ask(handler, {"v": 1, "op": "exec", "argv": ARGS, "exec_info": None}, SSH)
        assert refused["code"] == "local_only"
    finally:
        submit.close()


def test_a_forwarded_caller_claiming_a_terminal_cannot_reopen_an_abandoned_sign_in() -> None:
    clock = FakeClock()
    handler, source, submit = _handler(clock, RemoteGate(clock))
    try:
        source.sign_in_error = LoginFailed("abandoned")
        request = {"v": 1, "op": "exec", "argv": ARGS, "exec_info": None, "stdin_tty": True, "origin": "devbox"}
        assert _ask(handler, request, SSH)[-1]["code"] == "login_failed"  # the one automatic attempt
        source.sign_in_error = None
        assert _ask(handler, request, SSH)[-1]["code"] == "login_required"  # no second tab on the desktop
        assert source.sign_in_calls == 1
        assert _ask(handler, request, LOCAL)[-1]["type"] == "credential"  # a terminal at the desktop may
        assert source.sign_in_calls == 2
    finally:
        submit.close()


def test_the_remote_op_marks_and_unmarks_by_key_prefix() -> None:
    clock = FakeClock()
    gate = RemoteGate(clock, MemoryKeys())
    handler, _, submit = _handler(clock, gate)
    try:
        _ask(handler, {"v": 1, "op": "exec", "argv": ARGS, "exec_info": None}, LOCAL)
        key = parse_exec(ARGS).profile.key
        replies = _ask(handler, {"v": 1, "op": "remote", "key": key[:5], "local_only": True}, LOCAL)
        assert replies[0] == {"v": 1, "type": "remote_policy", "key": key, "local_only": True}
        assert gate.local_only() == {key}
        (bad,) = _ask(handler, {"v": 1, "op": "remote", "key": key, "local_only": "yes"}, LOCAL)
        assert bad["code"] == "bad_request"
        _ask(handler, {"v": 1, "op": "remote", "key": key, "local_only": False}, LOCAL)
        assert gate.local_only() == frozenset()
    finally:
        submit.close()


# -- the shim and its single file --------------------------------------------------------------------
def test_the_shim_names_its_host_in_every_request() -> None:
    doc = json.loads(shim_main.encode_request(["get-token"], {}))
    assert doc["origin"] == os.uname().nodename


def test_the_zipapp_holds_only_the_shim_and_runs_isolated(tmp_path: Path) -> None:
    path = shimzip.write(str(tmp_path / "kubetray-shim.pyz"))
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
    assert names == sorted(["__main__.py", *(f"shim/{m}" for m in shimzip.MODULES),
                            *(f"shim/{m}c" for m in shimzip.MODULES)])
    assert {"__init__.py", "main.py", "wire.py", "usage.py"} <= set(shimzip.MODULES)
    assert "launch.py" not in shimzip.MODULES
    assert shimzip.archive_bytes() == Path(path).read_bytes()  # reproducible
    env = {"PATH": "/usr/bin:/bin", "KUBETRAY_SOCKET": str(tmp_path / "nobody-here.sock")}
    proc = subprocess.run([sys.executable, "-IS", path, "get-token", *ARGS[1:]], env=env, capture_output=True,
                          timeout=30, check=False)
    assert proc.returncode == 1
    assert b"is the ssh session that forwards it open?" in proc.stderr
    assert not (tmp_path / "start.log").exists()  # never tries to start a daemon on the ssh host
    usage = subprocess.run([sys.executable, "-IS", path, "--help"], capture_output=True, timeout=30, check=False)
    assert usage.returncode == 0 and b"get-token" in usage.stdout
    fast = subprocess.run([sys.executable, "-IS", "-c", shimzip.BOOTSTRAP, path, "get-token", *ARGS[1:]], env=env,
                          capture_output=True, timeout=30, check=False)
    assert (fast.returncode, fast.stderr) == (proc.returncode, proc.stderr)  # the same shim, started faster


def test_the_archive_runs_on_a_python_its_bytecode_was_not_built_for(tmp_path: Path) -> None:
    path = Path(shimzip.write(str(tmp_path / "kubetray-shim.pyz")))
    with zipfile.ZipFile(path) as zf:
        pyc = zf.read("shim/main.pyc")
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    # Another interpreter version finds a foreign magic number and compiles the source beside it.
    broken = tmp_path / "foreign.pyz"
    data = path.read_bytes()
    broken.write_bytes(data.replace(importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little"),
                                    b"\x00\x00\r\n" + (1).to_bytes(4, "little")))
    assert broken.read_bytes() != data
    usage = subprocess.run([sys.executable, "-IS", str(broken), "--help"], capture_output=True, timeout=30,
                           check=False)
    assert usage.returncode == 0 and b"get-token" in usage.stdout


# -- the CLI's text ----------------------------------------------------------------------------------
def test_ssh_config_forwards_into_a_private_directory_under_the_remote_home() -> None:
    text = cli_remote.ssh_config_text("devbox", "/run/user/1000/kubetray/kubetray.sock", "/home/alice/")
    assert "Host devbox\n" in text
    assert ("    RemoteForward /home/alice/.kubetray/kubetray.sock /run/user/1000/kubetray/kubetray.sock\n"
            in text)
    assert "StreamLocalBindUnlink yes" in text and "AllowStreamLocalForwarding yes" in text
    assert "mkdir -m 700 -p /home/alice/.kubetray" in text


def test_remote_kubeconfig_runs_the_zipapp_against_the_forwarded_socket() -> None:
    doc = cli_remote.remote_kubeconfig(tuple(ARGS), "prod", "u", "c", {"server": "https://k"},
                                       python="python3", remote_home="/home/alice")
    exec_ = doc["users"][0]["user"]["exec"]
    assert exec_["command"] == "python3"
    assert exec_["args"] == ["-IS", "-c", shimzip.BOOTSTRAP, "/home/alice/.kubetray/kubetray-shim.pyz", *ARGS]
    assert exec_["env"] == [{"name": "KUBETRAY_SOCKET", "value": "/home/alice/.kubetray/kubetray.sock"}]
    assert doc["clusters"] == [{"name": "c", "cluster": {"server": "https://k"}}]


@pytest.mark.parametrize("secret", [["--client-secret", "s3"], ["--password=s3"], ["--oidc-client-secret", "x"]])
def test_remote_kubeconfig_never_carries_a_secret_to_the_other_machine(secret: list[str]) -> None:
    with pytest.raises(ValueError, match="does not copy secrets") as refused:
        cli_remote.remote_kubeconfig((*ARGS, *secret), "prod", "u", "c", {}, python="python3", remote_home="/h")
    assert "s3" not in str(refused.value)


# -- the tray ----------------------------------------------------------------------------------------
def _view(key: str, account: str) -> ProfileView:
    return ProfileView(key=key, login="interactive", authority="https://login.example/t", tenant_id="t",
                       client_id="c", server_id="s", account=account, state="ok", expires_on=10_000.0,
                       last_refresh=0.0, last_error="")


def test_the_tray_lists_recent_remote_use_and_marks_local_only_profiles() -> None:
    now = 5_000.0
    info = presenter.TrayInfo("1", "kr", "/s", "/l", remote=(  # most recent first, as the gate lists them
        RemoteUse("jump", "k2", now - 30, "ssh", refused=True), RemoteUse("devbox", "k1", now - 180, "ssh")),
        local_only=("k2",))
    model = presenter.build([_view("k1", "alice@x"), _view("k2", "admin@x")], info, now)
    remote = next(i for i in model.menu if i.label.startswith("Remote use"))
    assert remote.label == "Remote use: jump, just now"
    assert remote.submenu is not None
    assert [i.label for i in remote.submenu] == ["jump via ssh: admin@x, just now (refused: local-only)",
                                                  "devbox via ssh: alice@x, 3 min ago"]
    admin = next(i for i in model.menu if i.label.startswith("admin@x"))
    assert admin.submenu is not None
    assert any(i.label == "Local-only: refused to ssh hosts" for i in admin.submenu)
    assert presenter.build([_view("k1", "a")], presenter.TrayInfo("1", "kr", "/s", "/l"), now) == \
        presenter.build([_view("k1", "a")], presenter.TrayInfo("1", "kr", "/s", "/l"), now + 1)
    assert not any(i.label.startswith("Remote use") for i in
                   presenter.build([], presenter.TrayInfo("1", "kr", "/s", "/l"), now).menu)


def test_the_tray_controller_shows_what_the_daemons_gate_recorded() -> None:
    from broker.tray.controller import TrayController
    from tests.support.fakes import profile

    class Shown:
        def __init__(self) -> None:
            self.models: list[presenter.TrayModel] = []

        def show(self, model: presenter.TrayModel, *, from_timer: bool = False) -> None:
            self.models.append(model)

        def notify(self, title: str, message: str) -> None:
            pass

    clock = FakeClock()
    source, submit = FakeSource(clock), ThreadSubmit()
    service = TokenService(source=source, clock=clock, submit=submit, rand=lambda: 0.5)
    gate = RemoteGate(clock)
    view = Shown()
    controller = TrayController(service, view, presenter.TrayInfo("1", "kr", "/s", "/l"), clock=clock,
                                stop=lambda: None, tick=3600, remote=gate)
    try:
        p = profile()
        service.login(p).result(5)
        gate.mark(p.key, local_only=True)
        with pytest.raises(LocalOnly):
            gate.admit(SSH, "devbox", p.key)
        controller.update()
        labels = [i.label for i in view.models[-1].menu]
        assert "Remote use: devbox, just now" in labels
    finally:
        submit.close()


@pytest.mark.parametrize("login", ["azurecli", "azd", "msi", "spn"])
def test_modes_that_use_this_machines_programs_or_files_are_not_served_to_forwarded_callers(login: str) -> None:
    clock = FakeClock()
    gate = RemoteGate(clock)
    handler, source, submit = _handler(clock, gate)
    try:
        argv = ["get-token", "--login", login, "--server-id", "srv", "--client-id", "cli", "--tenant-id", "t1",
                "--client-secret", "s"]
        env = {"PATH": "/tmp/evil-bin", "AZURE_CONFIG_DIR": "/tmp/evil-az"}
        request = {"v": 1, "op": "exec", "argv": argv, "exec_info": None, "env": env, "origin": "devbox"}
        (refused,) = _ask(handler, request, SSH)
        assert refused["code"] == "local_only" and f"--login {login} uses what is on the machine" in refused["message"]
        assert source.silent_calls == [] and source.sign_in_calls == 0  # nothing ran on the desktop
        assert gate.recent()[0].refused is True
    finally:
        submit.close()


def test_a_forwarded_callers_environment_never_reaches_the_source() -> None:
    clock = FakeClock()
    handler, source, submit = _handler(clock, RemoteGate(clock))
    try:
        env = {"PATH": "/tmp/evil-bin", "HTTPS_PROXY": "http://evil:3128", "REQUESTS_CA_BUNDLE": "/tmp/evil.pem"}
        request = {"v": 1, "op": "exec", "argv": ARGS, "exec_info": None, "env": env, "cwd": "/tmp"}
        assert _ask(handler, request, SSH)[-1]["type"] == "credential"
        assert source.contexts and {(tuple(c.env), c.cwd) for c in source.contexts} == {((), "")}
    finally:
        submit.close()
