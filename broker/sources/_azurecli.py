"""Entra ID through the Azure CLI (``azurecli``): the token ``az account get-access-token`` prints.

The CLI owns the sign-in and its refresh tokens; kubetray only holds the access token in memory, and
never past the expiry the CLI reported, so ``az logout`` takes effect when that token runs out.

``az`` is looked up on the CALLER's PATH (forwarded with the request: kubectl's, with the user entry's
exec.env merged over it), never the daemon's, and runs with the caller's AZURE_CONFIG_DIR, proxy and
CA variables over the daemon's environment: the CLI kubelogin would have run.
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


def _expiry(doc: dict[str, object]) -> float:
    """``expires_on`` (epoch, az 2.54+) or the older ``expiresOn`` (local time, no zone)."""
    epoch = doc.get("expires_on")
    if isinstance(epoch, int | float) or (isinstance(epoch, str) and epoch.isdigit()):
        return float(epoch)
    text = doc.get("expiresOn")
    if isinstance(text, str):
        return dt.datetime.fromisoformat(text).timestamp()  # naive: local time, as az prints it
    raise ValueError("no expiry")


class AzureCliSource:
    """TokenSource for ``azurecli`` profiles."""

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
            raise LoginRequired("--login azurecli looks for `az` on kubectl's PATH, which the daemon learns "
                                "with each call; run kubectl again")
        az = self._which("az", path)
        if az is None:
            raise InvalidArguments("--login azurecli needs the Azure CLI (`az`) on kubectl's PATH (the user entry's "
                                   "exec.env counts); install it or add its directory to PATH")
        env = {**self._base_env, **context.env}
        argv = [az, "account", "get-access-token", "--resource", profile.server_id, "--output", "json"]
        if profile.tenant_id:
            argv += ["--tenant", profile.tenant_id]
        if profile.subscription:
            argv += ["--subscription", profile.subscription]
        started = self._clock.now()
        try:
            proc = self._run(argv, max(5.0, profile.timeout), env)
        except subprocess.TimeoutExpired as exc:
            raise ProviderUnreachable(
                f"`az account get-access-token` did not finish in {int(profile.timeout)} s"
            ) from exc
        except OSError as exc:
            raise InvalidArguments(f"cannot run the Azure CLI ({exc.strerror}); check its installation") from exc
        if proc.returncode != 0:
            # az's stderr says what is wrong ("Please run 'az login'…"); it carries no token.
            lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
            reason = next((ln for ln in lines if ln.startswith("ERROR")), lines[0] if lines else "no output")
            raise AuthError(f"the Azure CLI could not get a token ({printable(reason)[:300]}); run `az login`",
                            error="azurecli")
        try:
            doc = json.loads(proc.stdout)
            token = str(doc["accessToken"])
            expires_on = _expiry(doc)
        except (ValueError, KeyError, TypeError) as exc:
            # The cause's message names only the missing key or the JSON position, never the CLI's output.
            raise AuthError("the Azure CLI printed no token this kubetray understands; update the Azure CLI",
                            error="azurecli") from exc
        return Token(access_token=token, expires_on=expires_on, obtained_at=started,
                     account="Azure CLI", tenant_id=str(doc.get("tenant") or profile.tenant_id))

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        return self.acquire_silent(profile, context, force_refresh=True)

    def sign_out(self, profile: Profile) -> None:
        """Nothing is held but the access token in the service; `az logout` signs the CLI out."""
