"""A throwaway certificate authority for the test rig's HTTPS stand-ins.

MSAL refuses ``http://`` authorities and kubectl wants TLS for bearer tokens, so every stand-in
serves HTTPS with a leaf certificate issued here. Clients trust the CA either by its own PEM
(``ca.pem``: kubectl's ``certificate-authority``) or by a bundle that also holds the system roots
(``bundle()``: for ``REQUESTS_CA_BUNDLE``, which replaces rather than extends requests' trust).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCA", "system_ca_file"]

_VALIDITY = dt.timedelta(days=2)
# A little backdating absorbs clock differences between this process and kubectl's checks.
_BACKDATE = dt.timedelta(minutes=5)


def system_ca_file() -> Path | None:
    """Return the file holding the system's trusted roots, or None when none is found.

    Asks OpenSSL first (what Python's own ``ssl`` trusts), then certifi (what requests trusts).
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi
    except ImportError:
        return None
    where = Path(certifi.where())
    return where if where.is_file() else None


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kubetray test rig"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class TestCA:
    """A self-signed CA (P-256, fast to generate) kept in memory and written to ``ca.pem``."""

    __test__ = False  # not a pytest test class, despite the name

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path

    @classmethod
    def create(cls, directory: Path) -> TestCA:
        """Generate a new CA and write its certificate to ``directory/ca.pem``."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        name = _name("kubetray test CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        path = directory / "ca.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = directory / "ca-key.pem"
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        return cls(certificate=cert, key=key, path=path)

    @classmethod
    def load_or_create(cls, directory: Path) -> TestCA:
        """Reuse the CA in ``directory`` (so standalone stand-ins can share one), else create it."""
        path, key_path = directory / "ca.pem", directory / "ca-key.pem"
        if not (path.is_file() and key_path.is_file()):
            return cls.create(directory)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} does not hold the test CA's EC key")
        return cls(certificate=x509.load_pem_x509_certificate(path.read_bytes()), key=key, path=path)

    @property
    def pem_bytes(self) -> bytes:
        """The CA certificate in PEM form."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, directory: Path, name: str, hosts: Iterable[str] = ("127.0.0.1", "localhost")
    ) -> tuple[Path, Path]:
        """Issue a server certificate for ``hosts``; return ``(cert_path, key_path)``.

        IP literals become IP SANs and the rest DNS SANs: Go (kubectl) ignores the subject CN.
        """
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path = directory / f"{name}.pem"
        key_path = directory / f"{name}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self.pem_bytes)
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        return cert_path, key_path

    def server_context(self, directory: Path, name: str) -> ssl.SSLContext:
        """A server-side TLS context with a fresh certificate for 127.0.0.1 and localhost."""
        cert_path, key_path = self.issue(directory, name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        return context

    def bundle(self, directory: Path) -> Path:
        """Write ``directory/ca-bundle.pem``: the system roots plus this CA.

        ``REQUESTS_CA_BUNDLE`` replaces requests' trust store, so a bundle holding only the test
        CA would break every other HTTPS call in the same process.
        """
        directory.mkdir(parents=True, exist_ok=True)
        system = system_ca_file()
        parts = [system.read_bytes().rstrip(b"\n") + b"\n"] if system else []
        parts.append(self.pem_bytes)
        path = directory / "ca-bundle.pem"
        path.write_bytes(b"".join(parts))
        return path
