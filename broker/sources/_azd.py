"""Entra ID through the Azure Developer CLI (``azd``): the token ``azd auth token`` prints.

Like azurecli: azd owns the sign-in and its refresh tokens; kubetray holds only the access token in
memory and never past the expiry azd reported, so ``azd auth logout`` takes effect when it runs out.
The command line is azidentity's AzureDeveloperCLICredential's (what Azure kubelogin runs); ``azd`` is
looked up on the CALLER's PATH and run with the caller's forwarded environment, as azurecli is.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

from broker.core.errors import AuthError
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Progress
from broker.sources._cli import Cli, CliSource, not_found

AZD = Cli("azd", "the Azure Developer CLI", "azd", "azd auth login")


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


class AzdSource(CliSource):
    """TokenSource for ``azd`` profiles."""

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        azd, env = self.locate(AZD, context)
        return self.acquire_with(profile, azd, env)

    def acquire_with(self, profile: Profile, azd: str | None, env: Mapping[str, str]) -> Token:
        """Run ``azd`` (its resolved path, or None when it was not found) in ``env`` for the profile's token."""
        if azd is None:
            raise not_found(AZD)
        started = self._clock.now()
        stdout = self.output(AZD, azd_argv(azd, profile), profile.timeout, env,
                             error_line=lambda line: "ERROR" in line.upper())
        try:
            token, expires_on = parse_azd_token(stdout)
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
