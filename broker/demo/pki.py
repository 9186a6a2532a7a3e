"""Throwaway keys for the demo: a CA and a TLS certificate for 127.0.0.1, and a token-signing key."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class DemoPki:
    """Files under ``root``: ``ca.pem`` (trusted by the broker and kubectl), the server cert and key."""

    root: str
    ca_pem: bytes
    signing_key: rsa.RSAPrivateKey
    kid: str = "kubetray-demo-1"

    @classmethod
    def create(cls, root: str) -> DemoPki:
        now = dt.datetime.now(dt.timezone.utc)
        start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=1)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(_name("kubetray demo CA")).issuer_name(_name("kubetray demo CA"))
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        leaf = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        pem = serialization.Encoding.PEM
        _write(os.path.join(root, "ca.pem"), ca_pem)
        _write(os.path.join(root, "server.pem"), leaf.public_bytes(pem) + ca_pem)
        _write(os.path.join(root, "server.key"), key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cls(root, ca_pem, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def ca_path(self) -> str:
        return os.path.join(self.root, "ca.pem")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(self.root, "server.pem"), os.path.join(self.root, "server.key"))
        return context

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def verify(self, token: str, *, audience: str, issuer: str) -> dict[str, Any]:
        """Claims of a token this demo signed; raises jwt.PyJWTError otherwise."""
        claims: dict[str, Any] = jwt.decode(token, self.signing_key.public_key(), algorithms=["RS256"],
                                            audience=audience, issuer=issuer)
        return claims

    def jwks(self) -> dict[str, Any]:
        numbers = self.signing_key.public_key().public_numbers()

        def enc(n: int) -> str:
            return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": enc(numbers.n), "e": enc(numbers.e)}]}


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
