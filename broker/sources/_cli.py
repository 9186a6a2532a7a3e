"""Sign-in CLIs (``az``, ``azd``) run the way Azure kubelogin runs them.

The CLI owns the sign-in and its refresh tokens; a source only reads the access token it prints. The
executable is looked up on the CALLER's PATH (forwarded with the request: kubectl's, with the user
entry's exec.env merged over it), never the daemon's, and runs with the caller's forwarded variables
over the daemon's environment. The CLI's stderr says what is wrong ("Please run 'az login'"); it
carries no token, and only a cleaned, bounded line of it reaches a message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from broker.core.errors import AuthError, InvalidArguments, LoginRequired, ProviderUnreachable
from broker.core.model import RequestContext
from broker.core.ports import Clock
from broker.sources.catalogue import printable

Runner = Callable[[Sequence[str], float, Mapping[str, str]], "subprocess.CompletedProcess[bytes]"]
Which = Callable[[str, str], "str | None"]


def run_cli(argv: Sequence[str], timeout: float, env: Mapping[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
                          env=dict(env))


def which_on(name: str, path: str) -> str | None:
    return shutil.which(name, path=path)


@dataclass(frozen=True)
class Cli:
    """What a person needs to read about one CLI: its name, what it is called, how to sign in with it."""

    executable: str  # "az"
    title: str  # "the Azure CLI"
    mode: str  # the --login value, also the AuthError's code
    login: str  # "az login"


class CliSource:
    """The part every CLI-backed TokenSource shares: find the executable, run it, map its failures."""

    def __init__(self, clock: Clock, *, run: Runner = run_cli, which: Which = which_on,
                 base_env: Mapping[str, str] | None = None) -> None:
        self._clock = clock
        self._run = run
        self._which = which
        self._base_env = os.environ if base_env is None else base_env

    def locate(self, cli: Cli, context: RequestContext) -> tuple[str | None, dict[str, str]]:
        """The executable on the caller's PATH (None when it is not there) and the environment to run it in."""
        path = context.get("PATH")
        if not path:
            raise LoginRequired(f"--login {cli.mode} looks for `{cli.executable}` on kubectl's PATH, which the "
                                "daemon learns with each call; run kubectl again")
        return self._which(cli.executable, path), {**self._base_env, **context.env}

    def output(self, cli: Cli, argv: Sequence[str], timeout: float, env: Mapping[str, str], *,
               error_line: Callable[[str], bool]) -> bytes:
        """Run ``argv`` (its first item the located executable) and return its stdout, or raise our error."""
        shown = " ".join([cli.executable, *argv[1:3]])
        try:
            proc = self._run(argv, max(5.0, timeout), env)
        except subprocess.TimeoutExpired as exc:
            raise ProviderUnreachable(f"`{shown}` did not finish in {int(timeout)} s") from exc
        except OSError as exc:
            raise InvalidArguments(f"cannot run {cli.title} ({exc.strerror}); check its installation") from exc
        if proc.returncode != 0:
            lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
            reason = next((ln for ln in lines if error_line(ln)), lines[0] if lines else "no output")
            raise AuthError(f"{cli.title} could not get a token ({printable(reason)[:300]}); run `{cli.login}`",
                            error=cli.mode)
        return proc.stdout


def not_found(cli: Cli) -> InvalidArguments:
    return InvalidArguments(f"--login {cli.mode} needs {cli.title} (`{cli.executable}`) on kubectl's PATH (the "
                            "user entry's exec.env counts); install it or add its directory to PATH")
