"""The HTTP client for generic OpenID Connect providers: the trust int128/kubelogin's flags ask for.

``--certificate-authority`` files and ``--certificate-authority-data`` are added to the usual trust
(the caller's REQUESTS_CA_BUNDLE / SSL_CERT_FILE, else requests' bundle); ``--insecure-skip-tls-verify``
turns checking off. Each request carries ``verify=`` explicitly, because requests lets the daemon's
REQUESTS_CA_BUNDLE override a session's. The trust settings are part of the profile's identity
(Profile.key, Profile.cache_name): a refresh token only travels over the trust it was obtained with.

MSAL's username/password flow first asks ``https://<host>/common/userrealm/<user>`` (Entra's
federation lookup) on port 443 of the issuer's host, whatever port the issuer uses. A generic
provider has no such endpoint: the call would send the username to a port nobody configured and
fail the sign-in when nothing listens there. The session answers it with the 404 that means
"not federated" without touching the network.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import warnings
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from broker.core.errors import InvalidArguments
from broker.core.model import Profile
from broker.sources.http import BoundedSession, Network


class VerifyingSession(BoundedSession):
    """BoundedSession whose every request verifies TLS against ``verify`` (a bundle path or False)."""

    def __init__(self, verify: str | bool, network: Network | None = None) -> None:
        super().__init__(network=network)
        self._verify = verify

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> requests.Response:
        if _is_user_realm_lookup(url):
            return _not_found(url)
        kwargs["verify"] = self._verify
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)  # warned once, loudly
            return super().get(url, params=params, headers=headers, **kwargs)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> requests.Response:
        kwargs["verify"] = self._verify
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            return super().post(url, params=params, data=data, headers=headers, **kwargs)


def _is_user_realm_lookup(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and parts.port is None and parts.path.startswith("/common/userrealm/")


def _not_found(url: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response.url, response.reason = 404, url, "Not Found"
    response._content = b"{}"  # noqa: SLF001 - requests has no public constructor for a canned reply
    return response


def _pem_from_data(data: str) -> str:
    try:
        text = base64.b64decode(data, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArguments("--certificate-authority-data must be base64 of PEM certificates") from exc
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InvalidArguments("--certificate-authority-data must be base64 of PEM certificates")
    return text


def trust_for(profile: Profile, network: Network | None = None) -> str | bool:
    """``verify=`` for this profile: False, a bundle path, or True (the usual trust)."""
    if profile.insecure_skip_tls_verify:
        return False
    extra: list[str] = []
    for path in filter(None, profile.ca_file.split(os.pathsep)):
        try:
            with open(path, encoding="ascii") as f:
                extra.append(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArguments(f"cannot read --certificate-authority {path}; check the path") from exc
    extra += [_pem_from_data(d) for d in profile.ca_data.split()]
    caller_ca = network.ca_bundle if network is not None and network.from_caller else None
    if not extra:
        return caller_ca or True
    if caller_ca is not None:
        base = caller_ca if caller_ca and os.path.isfile(caller_ca) else requests.utils.DEFAULT_CA_BUNDLE_PATH
    else:
        base = os.environ.get("REQUESTS_CA_BUNDLE") or requests.utils.DEFAULT_CA_BUNDLE_PATH
    try:
        with open(base, encoding="ascii", errors="replace") as f:
            extra.insert(0, f.read())
    except OSError:
        pass  # only the named CAs, then
    # Certificates are public; the bundle is written 0600 in a private directory all the same.
    directory = tempfile.mkdtemp(prefix="kubetray-ca-")
    path = os.path.join(directory, "bundle.pem")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("\n".join(extra))
    return path
