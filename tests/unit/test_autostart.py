"""Start at login on all three OSes: files rendered and validated; enable/disable/status for real on Linux
(in a temporary XDG_CONFIG_HOME / HOME), the Windows Run key against a dictionary."""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from broker import autostart
from broker.autostart import ENABLED, FOREIGN, STALE, AutostartError, entry_command, linux, macos, windows

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WEIRD = ["/opt/my tools/ku\"be$tray\\100%", "run", "--detach"]  # spaces, quotes, $, backslash, %


def kubetray_command() -> list[str]:
    """This environment's entry point, as `kubetray autostart enable` chooses it."""
    return entry_command()


# -- parsers that read the files back as their consumers do ----------------------------------------------
def parse_desktop_exec(value: str) -> list[str]:
    """Desktop Entry Specification: undo string escapes, then split honouring quotes, then %%."""
    unescaped, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
            unescaped.append(escapes.get(value[i + 1], "\\" + value[i + 1]))
            i += 2
        else:
            unescaped.append(value[i])
            i += 1
    args: list[str] = []
    text, current, quoted, i = "".join(unescaped), [], False, 0
    started = False
    while i < len(text):
        c = text[i]
        if quoted and c == "\\" and i + 1 < len(text) and text[i + 1] in '"`$\\':
            current.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            quoted, started = not quoted, True
        elif c == " " and not quoted:
            if started or current:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(c)
        i += 1
    if started or current:
        args.append("".join(current))
    return [a.replace("%%", "%") for a in args]


def parse_windows(cmd: str) -> list[str]:
    """CommandLineToArgvW's rules (backslashes escape only before a quote)."""
    args: list[str] = []
    i, n = 0, len(cmd)
    while True:
        while i < n and cmd[i] in " \t":
            i += 1
        if i >= n:
            return args
        arg, quoted = [], False
        while i < n and (quoted or cmd[i] not in " \t"):
            if cmd[i] == "\\":
                j = i
                while j < n and cmd[j] == "\\":
                    j += 1
                if j < n and cmd[j] == '"':
                    arg.append("\\" * ((j - i) // 2))
                    if (j - i) % 2:
                        arg.append('"')
                        j += 1
                else:
                    arg.append("\\" * (j - i))
                i = j
            elif cmd[i] == '"':
                quoted = not quoted
                i += 1
            else:
                arg.append(cmd[i])
                i += 1
        args.append("".join(arg))


def parse_systemd_exec(value: str) -> list[str]:
    return [a.replace("%%", "%").replace("$$", "$") for a in shlex.split(value)]


def xdg_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path / "home")}


# -- the command an entry starts ---------------------------------------------------------------------------
def test_the_entry_point_is_the_installed_script_by_absolute_path() -> None:
    assert entry_command(executable="/v/bin/python", platform="linux", scripts_dirs=["/v/bin"],
                         isfile=lambda p: p == "/v/bin/kubetray") == ["/v/bin/kubetray", "run", "--detach"]


def test_without_the_script_it_runs_the_module_with_this_interpreter() -> None:
    assert entry_command(executable="/v/bin/python", platform="linux", scripts_dirs=["/v/bin"],
                         isfile=lambda p: False) == ["/v/bin/python", "-m", "broker", "run", "--detach"]


def test_on_windows_it_is_pythonw_so_no_console_window_opens_at_login() -> None:
    exe = r"C:\Users\a b\venv\Scripts\python.exe"
    cmd = entry_command(executable=exe, platform="win32", isfile=lambda p: p.endswith("pythonw.exe"))
    assert cmd[0].endswith("pythonw.exe") and cmd[1:] == ["-m", "broker", "run", "--detach"]


def test_the_real_entry_point_here_exists_and_is_absolute() -> None:
    cmd = kubetray_command()
    assert os.path.isabs(cmd[0]) and os.access(cmd[0], os.X_OK)


# -- Linux: XDG autostart ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["/usr/bin/kubetray", "run", "--detach"], WEIRD])
def test_the_desktop_entry_exec_reads_back_as_the_same_argv(command: list[str]) -> None:
    text = linux.render_desktop_entry(command, "/icons/kubetray.png")
    exec_value = next(line[5:] for line in text.splitlines() if line.startswith("Exec="))
    assert parse_desktop_exec(exec_value) == command


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed")
@pytest.mark.parametrize("name", ["autostart", "weird", "packaged"])
def test_desktop_entries_pass_desktop_file_validate(tmp_path: Path, name: str) -> None:
    if name == "packaged":
        path = ROOT / "packaging" / "linux" / "kubetray.desktop"
    else:
        command = kubetray_command() if name == "autostart" else WEIRD
        path = tmp_path / "kubetray.desktop"
        path.write_text(linux.render_desktop_entry(command, str(ROOT / "broker" / "assets" / "kubetray.png")))
    result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "error" not in result.stdout.lower(), result.stdout + result.stderr


def test_enable_writes_the_xdg_entry_idempotently_and_disable_removes_it(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    impl = linux.LinuxAutostart(kubetray_command(), env, icon="/i.png")
    assert not impl.status().enabled and impl.status().entries == ()
    status = impl.enable()
    path = tmp_path / "config" / "autostart" / "kubetray.desktop"
    assert status.enabled and [(e.kind, e.location, e.state) for e in status.entries] == [
        ("xdg-autostart", str(path), ENABLED)]
    before = path.stat()
    impl.enable()
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)  # nothing rewritten
    assert not impl.disable().enabled
    assert not path.exists()


def test_a_relative_xdg_config_home_is_ignored_as_the_spec_says(tmp_path: Path) -> None:
    impl = linux.LinuxAutostart(["/k"], {"XDG_CONFIG_HOME": "relative/dir", "HOME": str(tmp_path)})
    assert impl.desktop_path == str(tmp_path / ".config" / "autostart" / "kubetray.desktop")


def test_an_entry_for_another_installation_is_stale_and_enable_updates_it(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    linux.LinuxAutostart(["/old/venv/bin/kubetray", "run", "--detach"], env).enable()
    impl = linux.LinuxAutostart(kubetray_command(), env)
    status = impl.status()
    assert [e.state for e in status.entries] == [STALE] and status.enabled
    assert any("autostart enable" in line for line in status.lines())
    assert [e.state for e in impl.enable().entries] == [ENABLED]


def test_someone_elses_kubetray_desktop_is_reported_and_never_touched(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    path = tmp_path / "config" / "autostart" / "kubetray.desktop"
    path.parent.mkdir(parents=True)
    path.write_text("[Desktop Entry]\nType=Application\nName=mine\nExec=/home/me/bin/kubetray run\n")
    impl = linux.LinuxAutostart(kubetray_command(), env)
    assert [e.state for e in impl.status().entries] == [FOREIGN] and not impl.status().enabled
    with pytest.raises(FileExistsError, match="not written by kubetray"):
        impl.enable()
    impl.disable()
    assert path.read_text().startswith("[Desktop Entry]\nType=Application\nName=mine")


# -- Linux: systemd user unit --------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["/usr/bin/kubetray", "run", "--detach"], WEIRD])
def test_the_unit_execstart_reads_back_as_the_same_argv(command: list[str]) -> None:
    line = next(x for x in linux.render_unit(command).splitlines() if x.startswith("ExecStart="))
    assert parse_systemd_exec(line[len("ExecStart="):]) == command


def test_enable_systemd_writes_a_valid_unit_wanted_by_the_session_and_replaces_the_xdg_entry(tmp_path: Path) -> None:
    env = xdg_env(tmp_path)
    impl = linux.LinuxAutostart(kubetray_command(), env)
    impl.enable()
    status = impl.enable(systemd=True)
    unit = tmp_path / "config" / "systemd" / "user" / "kubetray.service"
    wants = unit.parent / "graphical-session.target.wants" / "kubetray.service"
    assert [(e.kind, e.state) for e in status.entries] == [("systemd-user", ENABLED)]
    assert wants.is_symlink() and wants.resolve() == unit.resolve()
    assert not (tmp_path / "config" / "autostart" / "kubetray.desktop").exists()  # one mechanism at a time
    if shutil.which("systemd-analyze"):
        check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    impl.disable()
    assert not unit.exists() and not wants.is_symlink()


def test_an_unwanted_unit_of_ours_is_stale_until_enabled_again(tmp_path: Path) -> None:
    impl = linux.LinuxAutostart(kubetray_command(), xdg_env(tmp_path))
    impl.enable(systemd=True)
    os.unlink(impl.wants_link)  # e.g. `systemctl --user disable kubetray`
    assert [e.state for e in impl.status().entries] == [STALE]
    assert [e.state for e in impl.enable(systemd=True).entries] == [ENABLED]


# -- macOS -------------------------------------------------------------------------------------------------
def test_the_launch_agent_is_a_valid_plist_that_runs_at_load(tmp_path: Path) -> None:
    doc = plistlib.loads(macos.render(WEIRD))
    assert doc["Label"] == "io.kubetray.broker"
    assert doc["ProgramArguments"] == WEIRD  # an argv: no quoting to get wrong
    assert doc["RunAtLoad"] is True and doc["LimitLoadToSessionType"] == "Aqua"
    impl = macos.MacAutostart(kubetray_command(), {"HOME": str(tmp_path)})
    status = impl.enable()
    path = tmp_path / "Library" / "LaunchAgents" / "io.kubetray.broker.plist"
    assert [(e.location, e.state) for e in status.entries] == [(str(path), ENABLED)]
    assert plistlib.loads(path.read_bytes())["ProgramArguments"][0] == kubetray_command()[0]
    assert not impl.disable().enabled and not path.exists()


def test_a_foreign_launch_agent_at_our_path_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "Library" / "LaunchAgents" / "io.kubetray.broker.plist"
    path.parent.mkdir(parents=True)
    path.write_bytes(plistlib.dumps({"Label": "com.example.other", "ProgramArguments": ["/bin/true"]}))
    impl = macos.MacAutostart(kubetray_command(), {"HOME": str(tmp_path)})
    assert [e.state for e in impl.disable().entries] == [FOREIGN]
    assert path.exists()


# -- Windows -------------------------------------------------------------------------------------------
class DictRunKey:
    def __init__(self) -> None:
        self.values: dict[str, str] = {"OneDrive": r'"C:\Program Files\OneDrive.exe" /background'}
        self.writes = 0

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value
        self.writes += 1

    def delete(self, name: str) -> None:
        del self.values[name]


@pytest.mark.parametrize("argv", [
    [r"C:\Users\Alex Wilber\AppData\Local\kubetray\venv\Scripts\pythonw.exe", "-m", "broker", "run", "--detach"],
    [r"C:\tools\pythonw.exe", r"C:\dir with space\\", 'say "hi"', ""],
])
def test_the_windows_command_line_parses_back_to_the_same_argv(argv: list[str]) -> None:
    assert parse_windows(windows.command_line(argv)) == argv


def test_the_run_key_value_is_written_once_and_only_ours_is_removed() -> None:
    key = DictRunKey()
    cmd = [r"C:\Program Files\Python312\pythonw.exe", "-m", "broker", "run", "--detach"]
    impl = windows.WindowsAutostart(cmd, key)
    status = impl.enable()
    impl.enable()
    assert key.writes == 1
    assert key.values["kubetray"] == r'"C:\Program Files\Python312\pythonw.exe" -m broker run --detach'
    assert [(e.location, e.state) for e in status.entries] == [
        (r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\kubetray", ENABLED)]
    key.values["kubetray"] = r"C:\old\pythonw.exe -m broker run"
    assert [e.state for e in impl.status().entries] == [STALE]
    impl.disable()
    assert key.values == {"OneDrive": r'"C:\Program Files\OneDrive.exe" /background'}


# -- choosing the implementation -----------------------------------------------------------------------
def test_the_backend_follows_the_environment_override(tmp_path: Path) -> None:
    impl = autostart.backend(environ={"KUBETRAY_AUTOSTART_BACKEND": "macos", "HOME": str(tmp_path)}, command=["/k"])
    assert impl.name == "macos"
    with pytest.raises(AutostartError, match="unknown autostart backend 'beos'"):
        autostart.backend(environ={"KUBETRAY_AUTOSTART_BACKEND": "beos"})


@pytest.mark.skipif(sys.platform == "win32", reason="winreg exists on Windows")
def test_an_unusable_backend_reports_its_import_error() -> None:
    with pytest.raises(AutostartError, match="windows: No module named 'winreg'"):
        autostart.backend("windows", environ={})


# -- the command line, for real --------------------------------------------------------------------------
def kubetray_cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBETRAY_AUTOSTART_BACKEND"}
    env.update(xdg_env(tmp_path), **extra)
    return subprocess.run([sys.executable, "-m", "broker", "autostart", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_kubetray_autostart_enable_status_disable(tmp_path: Path) -> None:
    path = tmp_path / "config" / "autostart" / "kubetray.desktop"
    off = kubetray_cli(tmp_path, "status")
    assert off.returncode == 0 and off.stdout.startswith("start at login: off (linux)")
    on = kubetray_cli(tmp_path, "enable")
    assert on.returncode == 0, on.stderr
    assert f"xdg-autostart: {path} [enabled]" in on.stdout
    assert f"Exec={linux.exec_quote(kubetray_command())}\n" in path.read_text()
    assert kubetray_cli(tmp_path, "enable").returncode == 0
    doc = json.loads(kubetray_cli(tmp_path, "status", "--json").stdout)
    assert doc["enabled"] is True and [e["state"] for e in doc["entries"]] == ["enabled"]
    assert kubetray_cli(tmp_path, "disable").returncode == 0
    assert not path.exists()
    assert not (tmp_path / "home").exists()  # nothing written outside XDG_CONFIG_HOME


def test_kubetray_autostart_where_it_cannot_work_says_why(tmp_path: Path) -> None:
    result = kubetray_cli(tmp_path, "enable", KUBETRAY_AUTOSTART_BACKEND="windows")
    assert result.returncode == 2
    assert "start at login is not available here" in result.stderr


# -- packaging stays in step with the code -------------------------------------------------------------
def test_the_packaged_templates_are_what_the_code_writes() -> None:
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import generate  # packaging/generate.py
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    for name, content in generate.templates().items():
        assert (ROOT / "packaging" / name).read_bytes() == content, f"run packaging/generate.py ({name} is stale)"
    template = (ROOT / "packaging" / "macos" / "io.kubetray.broker.plist.in").read_bytes()
    assert plistlib.loads(template)["ProgramArguments"][0] == "@KUBETRAY@"


def test_the_launch_agent_finds_homebrew_tools_and_kubetrays_own_bin() -> None:
    doc = plistlib.loads(macos.render(["/Users/ada/.local/share/kubetray/venv/bin/kubetray", "run", "--detach"]))
    path = doc["EnvironmentVariables"]["PATH"].split(":")
    assert path[0] == "/Users/ada/.local/share/kubetray/venv/bin"
    assert path.index("/opt/homebrew/bin") < path.index("/usr/local/bin") < path.index("/usr/bin")
    assert path[-4:] == ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]  # launchd's own default stays last
    template = plistlib.loads(macos.render(["@KUBETRAY@", "run"]))  # a relative command adds no entry
    assert template["EnvironmentVariables"]["PATH"].split(":")[0] == "/opt/homebrew/bin"
