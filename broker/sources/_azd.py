"""Entra ID through the Azure Developer CLI (``azd``): the token ``azd auth token`` prints.

Like azurecli: azd owns the sign-in and its refresh tokens; kubetray holds only the access token in
memory and never past the expiry azd reported, so ``azd auth logout`` takes effect when it runs out.
The command line is azidentity's AzureDeveloperCLICredential's (what Azure kubelogin runs); ``azd`` is
looked up on the CALLER's PATH and run with the caller's forwarded environment, as azurecli is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence

from broker.core.errors import AuthError, InvalidArguments, LoginRequired, ProviderUnreachable
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Clock, Progress
from broker.sources.catalogue import printable

Runner = Callable[[Sequence[str], float, Mapping[str, str]], "subprocess.CompletedProcess[bytes]"]
Which = Callable[[str, str], "str | None"]


def _run(argv: Sequence[str], timeout: float, env: Mapping[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
                          env=dict(env))


def _which(name: str, path: str) -> str | None:
    return shutil.which(name, path=path)


def azd_argv(azd: str, profile: Profile) -> list[str]:
    """``azd auth token -o json --no-prompt --scope <server>/.default [--tenant-id T]``."""
    argv = [azd, "auth", "token", "-o", "json", "--no-prompt", "--scope", f"{profile.server_id}/.default"]
    if profile.tenant_id:
        argv += ["--tenant-id", profile.tenant_id]
    return argv


def parse_azd_token(stdout: bytes) -> tuple[str, float]:
    """(token, expiry epoch) from azd's ``{"token": …, "expiresOn": "2006-01-02T15:04:05Z"}``; ValueError else."""
    try:
        doc = json.loads(stdout)
        token, expires = doc["token"], doc["expiresOn"]
    except (KeyError, TypeError) as exc:
        raise ValueError("not azd's token document") from exc
    if not isinstance(token, str) or not token or not isinstance(expires, str):
        raise ValueError("not azd's token document")
    when = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)  # azd prints UTC
    return token, when.timestamp()


class AzdSource:
    """TokenSource for ``azd`` profiles."""

    def __init__(self, clock: Clock, *, run: Runner = _run, which: Which = _which,
                 base_env: Mapping[str, str] | None = None) -> None:
        self._clock = clock
        self._run = run
        self._which = which
        self._base_env = os.environ if base_env is None else base_env

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        path = context.get("PATH")
        if not path:
            raise LoginRequired("--login azd looks for `azd` on kubectl's PATH, which the daemon learns with each "
                                "call; run kubectl again")
        return self.acquire_with(profile, self._which("azd", path), {**self._base_env, **context.env})

    def acquire_with(self, profile: Profile, azd: str | None, env: Mapping[str, str]) -> Token:
        """Run ``azd`` (its resolved path, or None when it was not found) in ``env`` for the profile's token."""
        if azd is None:
            raise InvalidArguments("--login azd needs the Azure Developer CLI (`azd`) on kubectl's PATH (the user "
                                   "entry's exec.env counts); install it or add its directory to PATH")
        started = self._clock.now()
        try:
            proc = self._run(azd_argv(azd, profile), max(5.0, profile.timeout), env)
        except subprocess.TimeoutExpired as exc:
            raise ProviderUnreachable(f"`azd auth token` did not finish in {int(profile.timeout)} s") from exc
        except OSError as exc:
            raise InvalidArguments(
                f"cannot run the Azure Developer CLI ({exc.strerror}); check its installation") from exc
        if proc.returncode != 0:
            # azd's stderr says what is wrong ("not logged in, run `azd auth login`"); it carries no token.
            lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
            reason = next((ln for ln in lines if "ERROR" in ln.upper()), lines[0] if lines else "no output")
            raise AuthError(f"the Azure Developer CLI could not get a token ({printable(reason)[:300]}); "
                            "run `azd auth login`", error="azd")
        try:
            token, expires_on = parse_azd_token(proc.stdout)
        except ValueError as exc:
            raise AuthError("the Azure Developer CLI printed no token this kubetray understands; update azd",
                            error="azd") from exc
        return Token(access_token=token, expires_on=expires_on, obtained_at=started, account="Azure Developer CLI",
                     tenant_id=profile.tenant_id)

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        return self.acquire_silent(profile, context, force_refresh=True)

    def sign_out(self, profile: Profile) -> str | None:
        """Nothing is held but the access token in the service."""
        return "azd keeps its own sign-in: run `azd auth logout` to end it"
