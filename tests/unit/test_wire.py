"""The shim's hand-written JSON and socket location agree with the daemon's json and platformdirs."""

from __future__ import annotations

import json
import os

import platformdirs
import pytest

from broker.core.errors import BadRequest
from broker.execplugin.execcred import API_V1, API_V1BETA1, exec_credential, parse_exec_info
from broker.ipc import framing
from shim import main as shim_main
from shim import wire


@pytest.mark.parametrize(
    "arg",
    ["plain", 'quo"te', "back\\slash", "new\nline\ttab\x00nul\x1f", "ünïcødé ✓", "emoji 🚀", "\udcff\udc80"],
)
def test_request_encoding_round_trips_through_json(arg: str) -> None:
    env = {"KUBERNETES_EXEC_INFO": '{"apiVersion":"x"}', "AZURE_CLIENT_ID": arg, "HOME": "/h"}
    line = shim_main.encode_request(["get-token", arg], env)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    doc = json.loads(line.decode("utf-8", "surrogatepass"))
    assert doc["v"] == wire.PROTOCOL_VERSION and doc["op"] == "exec"
    assert doc["argv"] == ["get-token", arg]
    assert doc["exec_info"] == '{"apiVersion":"x"}'
    assert doc["env"] == {"AZURE_CLIENT_ID": arg}  # only the variables kubelogin reads


def test_credential_reply_is_sliceable_and_valid_json() -> None:
    body = exec_credential(API_V1, "secret-token", 1_800_000_000)
    line = framing.credential(body)
    assert line.startswith(wire.CREDENTIAL_PREFIX)
    assert json.loads(line)["body"] == json.loads(body)
    doc = json.loads(line[len(wire.CREDENTIAL_PREFIX) : -2])
    assert doc["apiVersion"] == API_V1
    assert doc["status"] == {"token": "secret-token", "expirationTimestamp": "2027-01-15T08:00:00Z"}


def test_exec_info_versions() -> None:
    assert parse_exec_info(None).api_version == API_V1BETA1
    info = parse_exec_info('{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}')
    assert (info.api_version, info.interactive) == (API_V1, True)
    with pytest.raises(BadRequest, match="set the kubeconfig's exec apiVersion"):
        parse_exec_info('{"apiVersion":"client.authentication.k8s.io/v1alpha1"}')
    with pytest.raises(BadRequest):
        parse_exec_info("{not json")


def test_runtime_dir_matches_platformdirs(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBETRAY_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("KUBETRAY_SOCKET", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert wire.runtime_dir() == platformdirs.user_runtime_dir("kubetray")
    assert wire.socket_path() == os.path.join(platformdirs.user_runtime_dir("kubetray"), "kubetray.sock")


def test_runtime_dir_falls_back_under_home_when_the_xdg_base_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBETRAY_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent-kubetray-test")
    monkeypatch.setenv("HOME", "/home/alice")
    assert wire.runtime_dir() == "/home/alice/.cache/kubetray/run"  # never a guessable name in /tmp


def test_the_shim_fast_path_imports_neither_os_nor_json_nor_socket() -> None:
    """Each of these costs the shim a noticeable part of its start-up (see shim/wire.py)."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    probe = (
        f"import sys; sys.path.insert(0, {root!r}); import shim.main; from shim import wire;"
        "wire.socket_path(); wire.environ();"
        "print(sorted(set(sys.modules) & {'os', 'json', 'socket', 'enum', 'collections.abc', 'broker'}))"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True,
                         env={"XDG_RUNTIME_DIR": "/nonexistent", "HOME": "/h"})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_without_os_loaded_the_environment_is_read_from_the_builtin_module() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    probe = (f"import sys; sys.path.insert(0, {root!r}); from shim import wire;"
             "print(wire.getenv('KUBETRAY_SOCKET'), wire.environ()['ODD'] == 'caf\\u00e9', wire.getenv('NONE', 'd'))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True,
                         env={"KUBETRAY_SOCKET": "/s/k.sock", "ODD": "café"})
    assert out.stdout.split() == ["/s/k.sock", "True", "d"]
