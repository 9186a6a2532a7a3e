"""kubetray's benchmark: ratios measured side by side in one run, on this machine, now.

    python -m benchmarks.bench [--runs N]

Starts the test rig (private D-Bus + gnome-keyring, the Entra-shaped test authority, the API-server
stand-in), signs in once, then measures, interleaving the variants so machine noise hits them alike:
  1. the shim alone with a warm token vs `python -I -S -c pass` on the same interpreter;
  2. `kubectl get pods` through the shim vs the same command with a static token;
  3. the shim vs a one-shot Python plugin that imports msal + keyring and calls acquire_token_silent;
  4. daemon throughput and latency with 32 concurrent clients.
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
from pathlib import Path

from tests.support.apiserver import ApiServer
from tests.support.authority import EntraAuthority
from tests.support.rig import CLIENT_ID, SERVER_ID, Rig
from tests.support.session import IsolatedSession
from tests.support.tls import TestCA

TARGETS = {"shim_vs_bare_python": 1.3, "kubectl_shim_vs_static": 1.08, "baseline_vs_shim": 15.0}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="runs per variant (default 30)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kubetray-bench-"))
    saved_env = dict(os.environ)
    try:
        with IsolatedSession() as session:
            os.environ.clear()
            os.environ.update(session.env)
            results = _run(root, session.env, args.runs)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(root, ignore_errors=True)
    _report(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if all(results["pass"].values()) else 1


def _run(root: Path, env: dict[str, str], runs: int) -> dict[str, object]:
    from broker.process.launcher import ensure_launcher
    from broker.store.keyring_store import KeyringSecretStore, default_backend

    ca = TestCA.create(root / "ca")
    authority = EntraAuthority(ca, root / "authority").start()
    apiserver = ApiServer(ca, root / "apiserver", jwks_url=authority.jwks_url, issuer=authority.issuer_v1,
                          audience=SERVER_ID, client_ids=(CLIENT_ID,), ca_bundle_for_jwks=ca.bundle(root / "t")).start()
    rig = Rig(root=root / "rig", base_env=env, authority=authority, apiserver=apiserver, ca=ca)
    try:
        first = rig.kubectl("get", "pods")
        if first.returncode != 0:
            raise RuntimeError(first.stderr.decode())
        fast = ensure_launcher(str(root / "kubetray-shim"))
        python = sys.executable
        with open(fast) as f:  # the interpreter the launcher runs on: "the same interpreter" of the target
            shim_python = f.readline()[2:].split()[0]
        exec_info = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
                                "spec": {"interactive": False}})
        shim_env = {**rig.env, "KUBERNETES_EXEC_INFO": exec_info}
        shim_args = rig.get_token_args()
        # a static-token kubeconfig for the same cluster, with the token the daemon serves
        reply = rig.run(fast, *shim_args, credential_on_stdout=True, KUBERNETES_EXEC_INFO=exec_info)
        token = json.loads(reply.stdout)["status"]["token"]
        config = json.loads((rig.root / "kubeconfig").read_text())
        static = json.loads(json.dumps(config))
        static["users"][0]["user"] = {"token": token}
        (rig.root / "kubeconfig-static").write_text(json.dumps(static))
        config["users"][0]["user"]["exec"]["command"] = fast
        (rig.root / "kubeconfig-fast").write_text(json.dumps(config))
        # the baseline plugin gets a copy of the MSAL cache the daemon keeps
        import keyring as _keyring

        from broker.execplugin.kubelogin_args import parse_get_token

        profile = parse_get_token(shim_args)
        cache = KeyringSecretStore(default_backend()).load(profile.cache_name)
        _keyring.set_password("kubetray-bench-baseline", "cache", cache or "")
        baseline = [python, str(Path(__file__).with_name("baseline_plugin.py")), profile.authority, CLIENT_ID,
                    profile.scopes[0], "cache"]
        kubectl = shutil.which("kubectl", path=rig.env["PATH"]) or "kubectl"
        shim_times = side_by_side({
            "bare_python": ([shim_python, "-I", "-S", "-c", "pass"], shim_env),
            "shim_fast": ([fast, *shim_args], shim_env),
            "shim_console_script": ([str(Path(python).parent / "kubetray-shim"), *shim_args], shim_env),
            "baseline_plugin": ([*baseline], shim_env),
        }, runs)
        static_env = {**rig.env, "KUBECONFIG": str(rig.root / "kubeconfig-static")}
        fast_env = {**rig.env, "KUBECONFIG": str(rig.root / "kubeconfig-fast")}
        kubectl_times = side_by_side({
            "kubectl_static": ([kubectl, "get", "pods"], static_env),
            "kubectl_shim": ([kubectl, "get", "pods"], fast_env),
        }, max(10, runs // 2))
        request = json.dumps({"v": 1, "op": "exec", "argv": shim_args, "exec_info": exec_info}).encode() + b"\n"
        load = throughput(str(rig.socket), request)
        pid = rig.daemon_pid() or 0
        ratios = {
            "shim_vs_bare_python": shim_times["shim_fast"] / shim_times["bare_python"],
            "kubectl_shim_vs_static": kubectl_times["kubectl_shim"] / kubectl_times["kubectl_static"],
            "baseline_vs_shim": shim_times["baseline_plugin"] / shim_times["shim_fast"],
        }
        passed = {
            "shim_vs_bare_python": ratios["shim_vs_bare_python"] <= TARGETS["shim_vs_bare_python"],
            "kubectl_shim_vs_static": ratios["kubectl_shim_vs_static"] <= TARGETS["kubectl_shim_vs_static"],
            "baseline_vs_shim": ratios["baseline_vs_shim"] >= TARGETS["baseline_vs_shim"],
            "throughput": load["requests_per_second"] >= 3000 and load["p99_ms"] <= 20,
        }
        return {"medians_ms": {k: v * 1000 for k, v in {**shim_times, **kubectl_times}.items()},
                "ratios": ratios, "throughput": load, "daemon_rss_mib": rss_mib(pid) if pid else None,
                "pass": passed}
    finally:
        rig.stop_daemon()
        apiserver.stop()
        authority.stop()


def _report(r: dict[str, object]) -> None:
    medians: dict[str, float] = r["medians_ms"]  # type: ignore[assignment]
    ratios: dict[str, float] = r["ratios"]  # type: ignore[assignment]
    load: dict[str, float] = r["throughput"]  # type: ignore[assignment]
    passed: dict[str, bool] = r["pass"]  # type: ignore[assignment]
    print("kubetray benchmark (medians, measured side by side)")
    for name, ms in medians.items():
        print(f"  {name:22s} {ms:8.1f} ms")
    print(f"  shim / python -I -S -c pass      {ratios['shim_vs_bare_python']:6.2f}x  (target <= 1.30)  "
          f"{'ok' if passed['shim_vs_bare_python'] else 'MISSED'}")
    print(f"  kubectl via shim / static token  {ratios['kubectl_shim_vs_static']:6.2f}x  (target <= 1.08)  "
          f"{'ok' if passed['kubectl_shim_vs_static'] else 'MISSED'}")
    print(f"  one-shot msal plugin / shim      {ratios['baseline_vs_shim']:6.1f}x  (target >= 15)    "
          f"{'ok' if passed['baseline_vs_shim'] else 'MISSED'}")
    print(f"  daemon, {int(load['clients'])} clients: {load['requests_per_second']:.0f} req/s, "
          f"p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms  (target >= 3000 req/s, p99 <= 20 ms)  "
          f"{'ok' if passed['throughput'] else 'MISSED'}")
    if r.get("daemon_rss_mib"):
        print(f"  daemon resident memory: {r['daemon_rss_mib']:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
