"""The fast launcher per OS: its text, the command a kubeconfig names, and the console script it speeds up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from broker.kubeconfig import convert, files
from broker.process import launcher

CORPUS = Path(__file__).resolve().parent.parent / "data" / "kubeconfigs"
WIN_PYTHON = r"C:\Users\ada\AppData\Local\Programs\Python\Python312\python.exe"
WIN_LAUNCHER = r"C:\Users\ada\AppData\Local\kubetray\bin\kubetray-shim.py"
PIP_SCRIPT = """#!/venv/bin/python
# -*- coding: utf-8 -*-
import re
import sys
from shim.main import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def test_posix_kubeconfigs_name_the_launcher_itself() -> None:
    assert launcher.kubeconfig_command("/home/ada/.local/share/kubetray/bin/kubetray-shim", platform="linux") == [
        "/home/ada/.local/share/kubetray/bin/kubetray-shim"]
    assert launcher.kubeconfig_command("/x/kubetray-shim", platform="darwin") == ["/x/kubetray-shim"]


def test_windows_kubeconfigs_name_the_interpreter_with_dash_i_dash_s_and_the_launcher() -> None:
    assert launcher.kubeconfig_command(WIN_LAUNCHER, platform="win32", python=WIN_PYTHON) == [
        WIN_PYTHON, "-I", "-S", WIN_LAUNCHER]


def test_the_launcher_file_is_named_for_its_os() -> None:
    assert launcher.launcher_path("win32").endswith("kubetray-shim.py")
    assert os.path.basename(launcher.launcher_path("linux")) == "kubetray-shim"


def test_the_launcher_runs_without_site_and_finds_the_shim(tmp_path: Path) -> None:
    text = launcher.render()
    first = text.splitlines()[0]
    assert first.startswith("#!/") and first.endswith(" -IS")  # one shebang argument
    path = launcher.ensure_launcher(str(tmp_path / "bin" / "kubetray-shim"), console_script=str(tmp_path / "none"))
    assert os.access(path, os.X_OK)
    probe = text.replace("from shim.main import main\nmain()\n",
                         "print('site' in sys.modules, sys.flags.isolated, __import__('shim.main').__name__)\n")
    (tmp_path / "probe").write_text(probe)
    interpreter = first[2:].rsplit(" ", 1)[0]
    out = subprocess.run([interpreter, "-I", "-S", str(tmp_path / "probe")], capture_output=True, text=True,
                         check=True, timeout=30)
    assert out.stdout.split() == ["False", "1", "shim"]


@pytest.mark.skipif(sys.platform == "win32", reason="Windows console scripts are .exe files: left alone")
def test_pips_console_script_is_rewritten_to_the_launcher_and_nothing_else_is(tmp_path: Path) -> None:
    pip_script = tmp_path / "venv-bin" / "kubetray-shim"
    pip_script.parent.mkdir()
    pip_script.write_text(PIP_SCRIPT)
    launcher.ensure_launcher(str(tmp_path / "bin" / "kubetray-shim"), console_script=str(pip_script))
    assert pip_script.read_text() == launcher.render()
    assert os.access(pip_script, os.X_OK)

    other = tmp_path / "other"
    other.write_text("#!/bin/sh\necho something else named kubetray-shim\n")
    launcher.ensure_launcher(str(tmp_path / "bin" / "kubetray-shim"), console_script=str(other))
    assert other.read_text().startswith("#!/bin/sh")

    link = tmp_path / "link"
    link.symlink_to(pip_script)
    assert not launcher.is_pip_console_script(str(link))  # the target is rewritten, never a link in its place


def test_windows_form_converts_and_is_recognised_as_converted(tmp_path: Path) -> None:
    f = files.load(str(CORPUS / "aks-login-modes.yaml"))
    command = launcher.kubeconfig_command(WIN_LAUNCHER, platform="win32", python=WIN_PYTHON)
    findings = convert.convert_file(f, command)
    assert findings and all(x.action == convert.CONVERTED for x in findings)
    new = f.dump()
    old_doc = YAML(typ="safe").load((CORPUS / "aks-login-modes.yaml").read_text())
    for before, after in zip(old_doc["users"], YAML(typ="safe").load(new)["users"], strict=True):
        exec_ = after["user"]["exec"]
        assert exec_["command"] == WIN_PYTHON
        assert exec_["args"] == ["-I", "-S", WIN_LAUNCHER, *before["user"]["exec"]["args"]]
    path = tmp_path / "config"
    path.write_text(new)
    again = files.load(str(path))
    assert {x.action for x in convert.convert_file(again, command)} == {convert.ALREADY}
    assert again.dump() == new


def test_windows_form_entries_are_read_as_the_launcher_with_the_shims_arguments(tmp_path: Path) -> None:
    from broker.kubeconfig import contexts

    f = files.load(str(CORPUS / "aks-login-modes.yaml"))
    convert.convert_file(f, launcher.kubeconfig_command(WIN_LAUNCHER, platform="win32", python=WIN_PYTHON))
    path = tmp_path / "config"
    path.write_text(f.dump())
    doc = YAML(typ="safe").load(f.dump())
    context = doc["contexts"][0]["name"]
    entry = contexts.exec_entry(str(path), context)
    assert entry.uses_shim and entry.command == WIN_LAUNCHER
    assert entry.args[0] == "get-token"
    assert contexts.contexts_by_profile(str(path))  # every converted context maps to a profile
