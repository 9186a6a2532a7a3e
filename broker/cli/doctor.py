"""``kubetray doctor``: check, in order, everything between kubectl and the identity provider.

Each check says OK, or what is wrong and the one thing to do about it. Checks that need an earlier one
(the token needs the daemon) are skipped when it failed. The token is checked the way kube-apiserver
checks it: signature against the issuer's published keys, audience, expiry and not-before (with the
clock skew against the authority shown), and the client the token was issued to.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import stat
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from broker.cli.manage import CliError, context_entry, exec_token
from broker.core.errors import KubetrayError
from broker.core.model import Profile
from broker.execplugin.kubelogin_args import parse_exec
from broker.ipc import instance
from broker.kubeconfig.contexts import ExecEntry
from broker.process.paths import Paths
from shim.text import printable

OK, FAIL, SKIP = "ok", "fail", "skip"


@dataclass
class Result:
    """One check's outcome: ``status`` is ok, fail or skip; ``fix`` is set when it failed."""

    check: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class _Context:
    args: argparse.Namespace
    paths: Paths
    entry: ExecEntry | None = None
    profile: Profile | None = None
    discovery: dict[str, Any] | None = None
    skew: float | None = None  # authority clock minus ours, seconds
    daemon_up: bool = False


def check_exec(ctx: _Context) -> Result:
    name = "kubeconfig exec entry"
    try:
        ctx.entry = entry = context_entry(ctx.args.kubeconfig, ctx.args.context)
    except CliError as exc:
        return Result(name, FAIL, str(exc), "pass --context NAME, or convert with `kubetray convert-kubeconfig`")
    convert = f"run `kubetray convert-kubeconfig --context {entry.context}`"
    if not entry.uses_shim:
        return Result(name, FAIL, f"context {entry.context!r} runs {entry.command!r}, not kubetray-shim", convert)
    if not os.path.isabs(entry.command):
        return Result(name, FAIL, f"command {entry.command!r} is looked up on PATH at every kubectl call", convert)
    if not os.access(entry.command, os.X_OK):
        return Result(name, FAIL, f"{entry.command} is missing or not executable",
                      "run `kubetray shim-path` to write it, then point the kubeconfig at the path it prints")
    try:
        with open(entry.command, "rb") as f:
            first = f.readline(256).decode("utf-8", "replace").strip()
    except OSError as exc:
        return Result(name, FAIL, f"cannot read {entry.command}: {exc.strerror}", "check the file's permissions")
    slow = _slow_start(first)
    if slow:
        return Result(name, FAIL, f"{entry.command} {slow}, which adds start-up time to every kubectl call",
                      f"{convert} to use the fast launcher (`kubetray shim-path`)")
    try:
        ctx.profile = parse_exec(list(entry.args), {**os.environ, **entry.env}).profile
    except KubetrayError as exc:
        return Result(name, FAIL, f"context {entry.context!r}: {exc.message}", "fix the args in the kubeconfig")
    return Result(name, OK, f"context {entry.context!r} runs the fast launcher {entry.command}")


def _slow_start(shebang: str) -> str:
    """Why a command starts slowly ("" when it is the fast launcher or a native program)."""
    if not shebang.startswith("#!"):
        return ""
    words = shebang[2:].split()
    program = os.path.basename(words[0]) if words else ""
    if program == "env" or program in ("sh", "bash", "dash", "zsh"):
        return f"is a wrapper script ({shebang})"
    if program.startswith("python") and not any(w.startswith("-") and "I" in w and "S" in w for w in words[1:]):
        return "is a Python launcher that imports site-packages on every start"
    return ""


def check_kuberc(ctx: _Context) -> Result:
    """kubectl 1.35+ refuses credential plugins its kuberc does not allow (KEP-3104)."""
    from broker.kubeconfig import files, kuberc

    name = "kuberc plugin policy"
    try:
        f = kuberc.read()
    except files.KubeconfigError as exc:
        return Result(name, FAIL, f"cannot read the kuberc: {exc}", "fix the file, or set KUBERC=off to ignore it")
    if f is None:
        return Result(name, OK, "KUBERC=off: kubectl reads no kuberc and runs every credential plugin")
    shim = ctx.entry.command if ctx.entry is not None and ctx.entry.uses_shim else _launcher_path()
    verdict = kuberc.judge(f, shim)
    if not verdict.exists:
        return Result(name, OK, f"no kuberc at {f.path}: kubectl runs every credential plugin")
    if not verdict.refusal:
        return Result(name, OK, f"{f.path} lets kubectl run {shim} (policy {verdict.policy})")
    entry = kuberc.allowlist_entry(shim)
    if verdict.policy == kuberc.ALLOWLIST:
        fix = f"run `kubetray convert-kubeconfig --kuberc`, or add under credentialPluginAllowlist: {entry}"
    else:
        fix = f"set credentialPluginPolicy: Allowlist in {f.path} and add under credentialPluginAllowlist: {entry}"
    return Result(name, FAIL, f"kubectl 1.35+ will refuse the shim: {f.path}: {verdict.refusal}", fix)


def _launcher_path() -> str:
    from broker.process.launcher import launcher_path

    return launcher_path()


def check_daemon(ctx: _Context) -> Result:
    try:
        pong = instance.probe(ctx.paths.socket)
    except instance.ForeignPeer as exc:  # nothing was sent to it
        return Result("daemon", FAIL, f"refusing to use {ctx.paths.socket}: {exc}",
                      "fix what the socket directory check says, then run kubectl again")
    if pong is None:
        return Result("daemon", FAIL, f"nothing answers on {ctx.paths.socket}",
                      "run `kubetray run` (or any kubectl command starts it); its log says why it stopped")
    ctx.daemon_up = True
    return Result("daemon", OK, f"pid {pong.get('pid')}, kubetray {pong.get('version')}, socket {ctx.paths.socket}")


def check_socket_dir(ctx: _Context) -> Result:
    path = ctx.paths.runtime_dir
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Result("socket directory", OK, f"{path} does not exist yet; the daemon creates it 0700")
    fix = f"run `chmod 700 {path}` (or remove it) and restart the daemon with `kubetray stop`"
    if not stat.S_ISDIR(st.st_mode):
        return Result("socket directory", FAIL, f"{path} is not a directory", f"remove {path}")
    if st.st_uid != os.getuid():
        return Result("socket directory", FAIL, f"{path} belongs to uid {st.st_uid}, not to you", f"remove {path}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return Result("socket directory", FAIL, f"{path} has mode {mode:04o}; others could reach the socket", fix)
    return Result("socket directory", OK, f"{path} is yours, mode {mode:04o}")


def check_keyring(ctx: _Context) -> Result:
    from broker.app import keyring_report

    try:
        name = keyring_report()
    except KubetrayError as exc:
        return Result("keyring", FAIL, exc.message.split(". ")[0],
                      ". ".join(exc.message.split(". ")[1:]) or "unlock or install an OS keyring")
    return Result("keyring", OK, f"{name} is usable and unlocked")


def check_discovery(ctx: _Context) -> Result:
    import requests

    if ctx.profile is None:
        return Result("identity provider", SKIP, "needs a valid kubeconfig entry")
    url = ctx.profile.authority.rstrip("/") + "/v2.0/.well-known/openid-configuration"
    proxies = requests.utils.get_environ_proxies(url)
    via = f" via proxy {proxies['https']}" if proxies.get("https") else ""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    trust = f", trusting {bundle}" if bundle else ""
    try:
        response = requests.get(url, timeout=(5, 10))
        response.raise_for_status()
        ctx.discovery = dict(response.json())
    except requests.exceptions.SSLError:
        return Result("identity provider", FAIL, f"TLS verification failed for {url}{via}",
                      "if a proxy or private CA intercepts TLS, point REQUESTS_CA_BUNDLE at its certificate")
    except requests.exceptions.RequestException as exc:
        return Result("identity provider", FAIL, f"cannot reach {url}{via} ({type(exc).__name__})",
                      "check the network, HTTPS_PROXY and NO_PROXY, and the authority in the kubeconfig")
    except ValueError:
        return Result("identity provider", FAIL, f"{url} did not answer with a discovery document",
                      "check --authority-host / --environment and --tenant-id in the kubeconfig")
    date = response.headers.get("Date")
    if date:
        ctx.skew = email.utils.parsedate_to_datetime(date).timestamp() - time.time()
    return Result("identity provider", OK, f"discovery document from {url}{via}{trust}")


def check_token(ctx: _Context) -> Result:
    import jwt
    import requests

    name = "token"
    if ctx.entry is None or ctx.profile is None or not ctx.daemon_up:
        return Result(name, SKIP, "needs the kubeconfig entry and the daemon")
    try:
        token = exec_token(ctx.paths, ctx.entry)
    except CliError as exc:
        return Result(name, FAIL, f"the daemon gave no token: {exc}", "see the message; `kubetray login` signs in")
    try:
        header = jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return Result(name, FAIL, "the token is not a JWT", "this identity provider's tokens cannot be checked")
    problems: list[tuple[str, str]] = []
    if ctx.discovery is not None and ctx.discovery.get("jwks_uri"):
        try:
            keys = requests.get(str(ctx.discovery["jwks_uri"]), timeout=(5, 10)).json().get("keys", [])
            jwk = next((k for k in keys if k.get("kid") == header.get("kid")), None)
            if jwk is None:
                problems.append((f"signed with key {header.get('kid')!r}, which the issuer does not publish",
                                 "run `kubetray refresh`; if it persists the token comes from another issuer"))
            else:
                jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[str(header.get("alg", "RS256"))],
                           options={"verify_aud": False, "verify_exp": False, "verify_nbf": False})
        except jwt.InvalidSignatureError:
            problems.append(("the signature does not verify against the issuer's keys", "run `kubetray refresh`"))
        except (requests.exceptions.RequestException, ValueError, jwt.PyJWTError) as exc:
            problems.append((f"cannot check the signature ({type(exc).__name__})", "check the identity provider"))
    p = ctx.profile
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if not {p.server_id, p.client_id, f"api://{p.server_id}"} & set(map(str, auds)):
        problems.append((f"audience {aud!r} is neither the server id {p.server_id} nor the client id",
                         "set --server-id in the kubeconfig to the cluster's server application id, "
                         "then `kubetray login`"))
    caller = claims.get("appid") or claims.get("azp")
    if caller and caller != p.client_id:
        problems.append((f"issued to client {caller!r}, not {p.client_id}", "check --client-id in the kubeconfig"))
    now = time.time()
    skew = f"clock skew against the authority {ctx.skew:+.0f} s" if ctx.skew is not None else "clock skew unknown"
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and exp <= now:
        problems.append((f"expired {int(now - exp)} s ago ({skew})",
                         "run `kubetray refresh`; if the clock is wrong, sync it (e.g. `timedatectl set-ntp true`)"))
    if isinstance(nbf, int | float) and nbf > now:
        problems.append((f"not valid for another {int(nbf - now)} s ({skew})", "sync this machine's clock"))
    if problems:
        return Result(name, FAIL, "; ".join(d for d, _ in problems), "; ".join(dict.fromkeys(f for _, f in problems)))
    left = f"expires in {int((exp - now) // 60)} min" if isinstance(exp, int | float) else "no expiry"
    return Result(name, OK, f"signature, audience {aud}, client {caller}: valid; {left}; {skew}")


CHECKS = (check_exec, check_kuberc, check_daemon, check_socket_dir, check_keyring, check_discovery, check_token)


def run_doctor(args: argparse.Namespace, paths: Paths) -> int:
    ctx = _Context(args, paths)
    results: list[Result] = []
    for check in CHECKS:
        result = check(ctx)
        results.append(result)
        if not args.json:
            mark = {OK: "OK  ", FAIL: "FAIL", SKIP: "SKIP"}[result.status]
            # Details quote kubeconfig values and provider answers: nothing in them may drive the terminal.
            print(f"{mark}  {result.check}: {printable(result.detail)}")
            if result.fix:
                print(f"      fix: {printable(result.fix)}")
            sys.stdout.flush()
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.status == FAIL for r in results) else 0
