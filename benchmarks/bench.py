"""kubetray's benchmark: ratios measured side by side in one run, on this machine, now.

    python -m benchmarks.bench [--runs N]

Starts the test rig (private D-Bus + gnome-keyring, the Entra-shaped test authority, the API-server
stand-in), signs in once, then measures, interleaving the variants so machine noise hits them alike:
  1. the shim alone with a warm token vs `python -I -S -c pass` on the same interpreter;
  2. `kubectl get pods` through the shim vs the same command with a static token;
  3. the shim vs a one-shot Python plugin that imports msal + keyring and calls acquire_token_silent;
  4. daemon throughput and latency with 32 concurrent clients;
  5. what a PATH lookup of `kubetray-shim` finds: scripts/install's link, and a pipx-style venv's
     console script (the package installed into a fresh venv, as pipx does) before and after
     `kubetray shim-path`, each against its own interpreter's `-I -S -c pass`;
  6. the first kubectl call with no daemon running (its token and refresh token in the keyring) vs a
     warm one: with kubetray as scripts/install installs it (the target), and with this checkout's
     editable development venv (whose import hook adds ~15 ms to every interpreter start).
Processes are started with posix_spawn and timed wall-clock from spawn to exit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.apiserver import ApiServer
from tests.support.authority import EntraAuthority
from tests.support.rig import CLIENT_ID, SERVER_ID, Rig
from tests.support.session import IsolatedSession
from tests.support.tls import TestCA

TARGETS = {"shim_vs_bare_python": 1.3, "kubectl_shim_vs_static": 1.08, "baseline_vs_shim": 15.0,
           "path_install_vs_bare_python": 1.3, "path_pipx_vs_bare_python": 1.3, "first_call_vs_warm": 2.0}
REPO = Path(__file__).resolve().parent.parent
SETTLE = 1.5  # seconds for a daemon that has just answered its first call to finish loading


def spawn_seconds(argv: list[str], env: dict[str, str]) -> float:
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{argv[:3]} failed with status {status}")
    return elapsed


def side_by_side(variants: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, float]:
    """Median seconds per variant, interleaved run by run."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for argv, env in variants.values():  # warm the page cache once
        spawn_seconds(argv, env)
    for _ in range(runs):
        for name, (argv, env) in variants.items():
            samples[name].append(spawn_seconds(argv, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def _client(path: str, request: bytes, stop_at: float, out: list[float]) -> None:
    import socket

    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(request)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("daemon closed the connection")
                buf += chunk
        if not buf.startswith(b'{"v":1,"type":"credential"'):
            raise RuntimeError("unexpected reply")
        out.append(time.perf_counter() - t0)


def _client_process(
    path: str, request: bytes, threads: int, seconds: float, queue: multiprocessing.Queue  # type: ignore[type-arg]
) -> None:
    stop_at = time.perf_counter() + seconds
    results: list[list[float]] = [[] for _ in range(threads)]
    workers = [threading.Thread(target=_client, args=(path, request, stop_at, results[i])) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put([x for r in results for x in r])


def throughput(
    path: str, request: bytes, clients: int = 32, processes: int = 4, seconds: float = 4.0
) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=_client_process, args=(path, request, clients // processes, seconds, queue))
             for _ in range(processes)]
    for p in procs:
        p.start()
    latencies = [x for _ in procs for x in queue.get(timeout=seconds + 60)]
    for p in procs:
        p.join()
    latencies.sort()
    return {
        "clients": clients,
        "requests_per_second": len(latencies) / seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


SECTIONS = ("shim", "throughput", "path", "first_call")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="runs per variant (default 30)")
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="measure only this part (repeatable; default: all)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kubetray-bench-"))
    saved_env = dict(os.environ)
    try:
        with IsolatedSession() as session:
            os.environ.clear()
            os.environ.update(session.env)
            results = _run(root, session.env, args.runs, set(args.only or SECTIONS), saved_env)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(root, ignore_errors=True)
    _report(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if all(results["pass"].values()) else 1  # type: ignore[attr-defined]


def _run(root: Path, env: dict[str, str], runs: int, only: set[str], outer_env: dict[str, str]) -> dict[str, object]:
    from broker.process.launcher import ensure_launcher

    ca = TestCA.create(root / "ca")
    authority = EntraAuthority(ca, root / "authority").start()
    apiserver = ApiServer(ca, root / "apiserver", jwks_url=authority.jwks_url, issuer=authority.issuer_v1,
                          audience=SERVER_ID, client_ids=(CLIENT_ID,), ca_bundle_for_jwks=ca.bundle(root / "t")).start()
    rig = Rig(root=root / "rig", base_env=env, authority=authority, apiserver=apiserver, ca=ca)
    medians: dict[str, float] = {}
    ratios: dict[str, float] = {}
    passed: dict[str, bool] = {}
    out: dict[str, object] = {"medians_ms": medians, "ratios": ratios, "pass": passed}
    try:
        first = rig.kubectl("get", "pods")
        if first.returncode != 0:
            raise RuntimeError(first.stderr.decode())
        fast = ensure_launcher(str(root / "kubetray-shim"))
        exec_info = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
                                "spec": {"interactive": False}})
        shim_env = {**rig.env, "KUBERNETES_EXEC_INFO": exec_info}
        shim_args = rig.get_token_args()
        config = json.loads((rig.root / "kubeconfig").read_text())
        config["users"][0]["user"]["exec"]["command"] = fast
        (rig.root / "kubeconfig-fast").write_text(json.dumps(config))
        fast_env = {**rig.env, "KUBECONFIG": str(rig.root / "kubeconfig-fast")}
        kubectl = shutil.which("kubectl", path=rig.env["PATH"]) or "kubectl"
        if "shim" in only:
            _shim_rows(rig, fast, shim_args, shim_env, exec_info, kubectl, fast_env, runs, medians, ratios, passed)
        if "throughput" in only:
            request = json.dumps({"v": 1, "op": "exec", "argv": shim_args, "exec_info": exec_info}).encode() + b"\n"
            load = throughput(str(rig.socket), request)
            out["throughput"] = load
            passed["throughput"] = load["requests_per_second"] >= 3000 and load["p99_ms"] <= 20
            pid = rig.daemon_pid() or 0
            out["daemon_rss_mib"] = rss_mib(pid) if pid else None
        installed = _install(root / "path", shim_env, outer_env) if only & {"path", "first_call"} else None
        if "path" in only:
            assert installed is not None
            _path_rows(root / "path", installed, shim_args, shim_env, runs, medians, ratios, passed)
        if "first_call" in only:
            assert installed is not None
            config["users"][0]["user"]["exec"]["command"] = installed.on_path
            (rig.root / "kubeconfig-installed").write_text(json.dumps(config))
            installed_env = {**rig.env, "KUBECONFIG": str(rig.root / "kubeconfig-installed")}
            _first_call_rows(rig, kubectl, {"installed": installed_env, "dev venv": fast_env}, max(8, runs // 2),
                             medians, ratios, passed)
        return out
    finally:
        rig.stop_daemon()
        apiserver.stop()
        authority.stop()


def _shim_rows(rig: Rig, fast: str, shim_args: list[str], shim_env: dict[str, str], exec_info: str, kubectl: str,
               fast_env: dict[str, str], runs: int, medians: dict[str, float], ratios: dict[str, float],
               passed: dict[str, bool]) -> None:
    from broker.store.keyring_store import KeyringSecretStore, default_backend

    python = sys.executable
    shim_python = _interpreter_of(fast)  # "the same interpreter" of the target
    # a static-token kubeconfig for the same cluster, with the token the daemon serves
    reply = rig.run(fast, *shim_args, credential_on_stdout=True, KUBERNETES_EXEC_INFO=exec_info)
    token = json.loads(reply.stdout)["status"]["token"]
    static = json.loads((rig.root / "kubeconfig").read_text())
    static["users"][0]["user"] = {"token": token}
    (rig.root / "kubeconfig-static").write_text(json.dumps(static))
    # the baseline plugin gets a copy of the MSAL cache the daemon keeps
    import keyring as _keyring

    from broker.execplugin.kubelogin_args import parse_get_token

    profile = parse_get_token(shim_args)
    cache = KeyringSecretStore(default_backend()).load(profile.cache_name)
    _keyring.set_password("kubetray-bench-baseline", "cache", cache or "")
    baseline = [python, str(Path(__file__).with_name("baseline_plugin.py")), profile.authority, CLIENT_ID,
                profile.scopes[0], "cache"]
    shim_times = side_by_side({
        "bare_python": ([shim_python, "-I", "-S", "-c", "pass"], shim_env),
        "shim_fast": ([fast, *shim_args], shim_env),
        "shim_console_script": ([str(Path(python).parent / "kubetray-shim"), *shim_args], shim_env),
        "baseline_plugin": ([*baseline], shim_env),
    }, runs)
    static_env = {**rig.env, "KUBECONFIG": str(rig.root / "kubeconfig-static")}
    kubectl_times = side_by_side({
        "kubectl_static": ([kubectl, "get", "pods"], static_env),
        "kubectl_shim": ([kubectl, "get", "pods"], fast_env),
    }, max(10, runs // 2))
    medians.update({k: v * 1000 for k, v in {**shim_times, **kubectl_times}.items()})
    ratios["shim_vs_bare_python"] = shim_times["shim_fast"] / shim_times["bare_python"]
    ratios["kubectl_shim_vs_static"] = kubectl_times["kubectl_shim"] / kubectl_times["kubectl_static"]
    ratios["baseline_vs_shim"] = shim_times["baseline_plugin"] / shim_times["shim_fast"]
    passed["shim_vs_bare_python"] = ratios["shim_vs_bare_python"] <= TARGETS["shim_vs_bare_python"]
    passed["kubectl_shim_vs_static"] = ratios["kubectl_shim_vs_static"] <= TARGETS["kubectl_shim_vs_static"]
    passed["baseline_vs_shim"] = ratios["baseline_vs_shim"] >= TARGETS["baseline_vs_shim"]


def _interpreter_of(script: str) -> str:
    with open(script) as f:
        return f.readline()[2:].split()[0]


@dataclass
class Installed:
    """kubetray as the README's scripts/install leaves it, in a throwaway HOME."""

    on_path: str  # ~/.local/bin/kubetray-shim
    python: str  # the interpreter its launcher runs
    install_env: dict[str, str]


def _install(root: Path, shim_env: dict[str, str], outer_env: dict[str, str]) -> Installed:
    import subprocess

    root.mkdir(parents=True)
    home = root / "home"
    home.mkdir()
    # pip needs the outside world (the registry or its cache); everything else stays in the session.
    pip_env = {k: v for k, v in outer_env.items() if k.startswith(("PIP_", "HTTP", "HTTPS", "NO_PROXY", "http",
                                                                    "https", "no_proxy", "SSL_", "REQUESTS_"))}
    cache = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], env=outer_env, capture_output=True,
                           text=True, check=False).stdout.strip()
    if cache:
        pip_env["PIP_CACHE_DIR"] = cache
    install_env = {**shim_env, **pip_env, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local/share"),
                   "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([str(REPO / "scripts" / "install"), "--no-start"], env=install_env, check=True,
                   stdout=subprocess.DEVNULL)
    on_path = shutil.which("kubetray-shim", path=str(home / ".local" / "bin"))
    if on_path is None:
        raise RuntimeError("scripts/install put no kubetray-shim into ~/.local/bin")
    return Installed(on_path, _interpreter_of(os.path.realpath(on_path)), install_env)


def _path_rows(root: Path, installed: Installed, shim_args: list[str], shim_env: dict[str, str], runs: int,
               medians: dict[str, float], ratios: dict[str, float], passed: dict[str, bool]) -> None:
    """``kubetray-shim`` as a PATH lookup finds it after scripts/install and after a pipx-style install."""
    import subprocess

    on_path, install_python, install_env = installed.on_path, installed.python, installed.install_env
    # 2. pipx: a fresh venv with the package installed; its bin/kubetray-shim is what pipx links
    venv = root / "pipx-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO)],
                   env={**install_env}, check=True, stdout=subprocess.DEVNULL)
    pipx_script = str(venv / "bin" / "kubetray-shim")
    pipx_python = str(venv / "bin" / "python")
    before = side_by_side({
        "pipx_bare_python": ([pipx_python, "-I", "-S", "-c", "pass"], shim_env),
        "pipx_console_script_as_installed": ([pipx_script, *shim_args], shim_env),
    }, runs)
    subprocess.run([str(venv / "bin" / "kubetray"), "shim-path"], env=install_env, check=True,
                   stdout=subprocess.DEVNULL)
    pipx_python = _interpreter_of(pipx_script)  # now the launcher's: the interpreter its shebang names
    after = side_by_side({
        "install_bare_python": ([install_python, "-I", "-S", "-c", "pass"], shim_env),
        "install_path_shim": ([on_path, *shim_args], shim_env),
        "pipx_bare_python": ([pipx_python, "-I", "-S", "-c", "pass"], shim_env),
        "pipx_console_script": ([pipx_script, *shim_args], shim_env),
    }, runs)
    medians["pipx_bare_python (before)"] = before["pipx_bare_python"] * 1000
    medians["pipx_console_script_as_installed"] = before["pipx_console_script_as_installed"] * 1000
    medians.update({k: v * 1000 for k, v in after.items()})
    ratios["path_pipx_as_installed_vs_bare_python"] = (before["pipx_console_script_as_installed"]
                                                       / before["pipx_bare_python"])
    ratios["path_install_vs_bare_python"] = after["install_path_shim"] / after["install_bare_python"]
    ratios["path_pipx_vs_bare_python"] = after["pipx_console_script"] / after["pipx_bare_python"]
    for name in ("path_install_vs_bare_python", "path_pipx_vs_bare_python"):
        passed[name] = ratios[name] <= TARGETS[name]


def _first_call_rows(rig: Rig, kubectl: str, variants: dict[str, dict[str, str]], runs: int,
                     medians: dict[str, float], ratios: dict[str, float], passed: dict[str, bool]) -> None:
    """The first kubectl with no daemon (its token and refresh token in the keyring) vs the next, warm
    one, per variant (a kubeconfig environment); the variants interleaved run by run."""
    cold: dict[str, list[float]] = {name: [] for name in variants}
    warm: dict[str, list[float]] = {name: [] for name in variants}
    argv = [kubectl, "get", "pods"]
    for env in variants.values():
        spawn_seconds(argv, env)
    for _ in range(runs):
        for name, env in variants.items():
            rig.stop_daemon()
            if rig.socket.exists() and rig.daemon_pid():
                raise RuntimeError("the daemon did not stop")
            cold[name].append(spawn_seconds(argv, env))
            time.sleep(SETTLE)  # the warm call meets an idle daemon, not one still loading msal and the tray
            warm[name].append(spawn_seconds(argv, env))
    for name in variants:
        suffix = "" if name == "installed" else f" ({name})"
        medians[f"kubectl_first_call{suffix}"] = statistics.median(cold[name]) * 1000
        medians[f"kubectl_warm_call{suffix}"] = statistics.median(warm[name]) * 1000
    ratios["first_call_vs_warm"] = statistics.median(cold["installed"]) / statistics.median(warm["installed"])
    passed["first_call_vs_warm"] = ratios["first_call_vs_warm"] <= TARGETS["first_call_vs_warm"]
    if "dev venv" in variants:
        ratios["first_call_vs_warm_dev"] = statistics.median(cold["dev venv"]) / statistics.median(warm["dev venv"])


_RATIO_LINES = (
    ("shim_vs_bare_python", "shim / python -I -S -c pass", "<= 1.30"),
    ("kubectl_shim_vs_static", "kubectl via shim / static token", "<= 1.08"),
    ("baseline_vs_shim", "one-shot msal plugin / shim", ">= 15"),
    ("path_install_vs_bare_python", "PATH kubetray-shim (install) / its python -I -S", "<= 1.30"),
    ("path_pipx_as_installed_vs_bare_python", "pipx console script as pip wrote it / -I -S", "(before)"),
    ("path_pipx_vs_bare_python", "pipx console script after shim-path / -I -S", "<= 1.30"),
    ("first_call_vs_warm", "first kubectl (no daemon) / warm, as installed", "<= 2.00"),
    ("first_call_vs_warm_dev", "the same, this checkout's editable dev venv", "(info)"),
)


def _report(r: dict[str, object]) -> None:
    medians: dict[str, float] = r["medians_ms"]  # type: ignore[assignment]
    ratios: dict[str, float] = r["ratios"]  # type: ignore[assignment]
    passed: dict[str, bool] = r["pass"]  # type: ignore[assignment]
    print("kubetray benchmark (medians, measured side by side)")
    for name, ms in medians.items():
        print(f"  {name:36s} {ms:8.1f} ms")
    for key, label, target in _RATIO_LINES:
        if key in ratios:
            verdict = "" if key not in passed else ("ok" if passed[key] else "MISSED")
            print(f"  {label:50s} {ratios[key]:6.2f}x  (target {target})  {verdict}")
    load: dict[str, float] | None = r.get("throughput")  # type: ignore[assignment]
    if load:
        print(f"  daemon, {int(load['clients'])} clients: {load['requests_per_second']:.0f} req/s, "
              f"p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms  (target >= 3000 req/s, p99 <= 20 ms)  "
              f"{'ok' if passed['throughput'] else 'MISSED'}")
    if r.get("daemon_rss_mib"):
        print(f"  daemon resident memory: {r['daemon_rss_mib']:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
