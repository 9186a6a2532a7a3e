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

from broker.core.errors import AuthError
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Progress
from broker.sources._cli import Cli, CliSource, not_found

AZ = Cli("az", "the Azure CLI", "azurecli", "az login")


def _expiry(doc: dict[str, object]) -> float:
    """``expires_on`` (epoch, az 2.54+) or the older ``expiresOn`` (local time, no zone)."""
    epoch = doc.get("expires_on")
    if isinstance(epoch, int | float) or (isinstance(epoch, str) and epoch.isdigit()):
        return float(epoch)
    text = doc.get("expiresOn")
    if isinstance(text, str):
        return dt.datetime.fromisoformat(text).timestamp()  # naive: local time, as az prints it
    raise ValueError("no expiry")


class AzureCliSource(CliSource):
    """TokenSource for ``azurecli`` profiles."""

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        az, env = self.locate(AZ, context)
        if az is None:
            raise not_found(AZ)
        argv = [az, "account", "get-access-token", "--resource", profile.server_id, "--output", "json"]
        if profile.tenant_id:
            argv += ["--tenant", profile.tenant_id]
        if profile.subscription:
            argv += ["--subscription", profile.subscription]
        started = self._clock.now()
        stdout = self.output(AZ, argv, profile.timeout, env, error_line=lambda line: line.startswith("ERROR"))
        try:
            doc = json.loads(stdout)
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
