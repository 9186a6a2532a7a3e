"""Client certificates for Entra service principals: PEM or PFX in, what MSAL needs out.

Azure kubelogin reads ``--client-certificate`` as PEM or PFX (with ``--client-certificate-password``).
MSAL signs its client assertion with the key; we hand it the SHA-1 thumbprint and every certificate of
the file, so the assertion carries ``x5t`` and the whole chain in ``x5c`` (Subject Name/Issuer auth).
The decrypted key lives only in this process's memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from broker.core.errors import InvalidArguments


@dataclass(frozen=True)
class ClientCertificate:
    """A signing key and its certificate chain (leaf first), ready for MSAL's client_credential."""

    private_key_pem: str = field(repr=False)
    thumbprint: str
    chain_pem: str

    def msal_credential(self) -> dict[str, str]:
        return {"private_key": self.private_key_pem, "thumbprint": self.thumbprint,
                "public_certificate": self.chain_pem}


def _public_der(key: object) -> bytes:
    public = key.public_key()  # type: ignore[attr-defined]
    return bytes(public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def load_client_certificate(path: str, password: str) -> ClientCertificate:
    """Read a PEM (key + certificates) or PFX file; InvalidArguments says what is wrong with it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InvalidArguments(f"cannot read --client-certificate {path}: {exc.strerror}") from exc
    secret = password.encode() if password else None
    key: object = None
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, secret)
            certs = x509.load_pem_x509_certificates(data)
        else:
            key, leaf, extra = pkcs12.load_key_and_certificates(data, secret)
            certs = ([leaf] if leaf else []) + list(extra)
    except (ValueError, TypeError) as exc:
        raise InvalidArguments(
            f"--client-certificate {path} is not a PEM or PFX file with a private key, or the "
            "--client-certificate-password is wrong"
        ) from exc
    if key is None or not certs:
        raise InvalidArguments(f"--client-certificate {path} must hold both the private key and its certificate")
    # The leaf is the certificate of this key; the rest of the file is its chain.
    key_der = _public_der(key)
    certs.sort(key=lambda c: _public_der(c) != key_der)
    if _public_der(certs[0]) != key_der:
        raise InvalidArguments(f"no certificate in {path} matches its private key")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    chain = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
    thumbprint = hashlib.sha1(certs[0].public_bytes(serialization.Encoding.DER)).hexdigest()  # noqa: S324 - x5t is SHA-1 by definition
    return ClientCertificate(key_pem, thumbprint, chain)
