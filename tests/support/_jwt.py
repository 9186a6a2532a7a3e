"""Token signing keys for the test authority: RS256 keys with a kid, published as a JWKS.

Entra signs with RSA 2048 / RS256 and puts the key id in both ``kid`` and ``x5t``; the API-server
stand-in and pyjwt read ``kid``. Keys can be rotated so a verifier's "refetch on unknown kid" path
can be exercised.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["SigningKey", "KeySet", "b64url"]


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses everywhere."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """One RSA key pair and its key id."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh RSA 2048 key; the kid is a SHA-1 digest of the public key, shaped like Entra's x5t."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kid = b64url(hashlib.sha1(der, usedforsecurity=False).digest())
        return cls(kid=kid, private_key=key)

    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with the fields Entra publishes (minus the certificate chain)."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _int_b64(numbers.n),
            "e": _int_b64(numbers.e),
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWS over ``claims`` with Entra's header shape."""
        return jwt.encode(
            claims,
            self.private_key,
            algorithm="RS256",
            headers={"typ": "JWT", "kid": self.kid, "x5t": self.kid},
        )


class KeySet:
    """The authority's keys: the newest signs, all recent ones stay published (as Entra does)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys = [SigningKey.generate()]

    @property
    def current(self) -> SigningKey:
        """The key that signs new tokens."""
        with self._lock:
            return self._keys[-1]

    def rotate(self, *, keep_old: bool = True) -> SigningKey:
        """Start signing with a new key; drop the old ones from the JWKS unless ``keep_old``."""
        new = SigningKey.generate()
        with self._lock:
            self._keys = [*self._keys, new] if keep_old else [new]
        return new

    def jwks(self) -> dict[str, Any]:
        """The JWKS document served at ``discovery/v2.0/keys``."""
        with self._lock:
            return {"keys": [key.jwk() for key in self._keys]}
