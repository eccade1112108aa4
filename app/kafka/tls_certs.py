"""Throwaway TLS certificates for the tests and ``txstream demo --tls``: a CA, a server, a client.

Never for production: the keys are written unencrypted next to the certificates, and the
CA lives only as long as its directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateFiles", "TlsFiles", "make_tls_files"]

#: Names a loopback server certificate carries: every way a test or the demo connects.
LOOPBACK_NAMES = ("127.0.0.1", "localhost")
_VALIDITY = dt.timedelta(days=2)


@dataclass(frozen=True)
class CertificateFiles:
    """A certificate and its private key, PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate it signed and a client certificate it signed."""

    ca: Path
    server: CertificateFiles
    client: CertificateFiles


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "txstream (throwaway)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _issue(directory: Path, stem: str, common_name: str, issuer: x509.Certificate,
           issuer_key: ec.EllipticCurvePrivateKey, *, server: bool,
           names: Sequence[str]) -> CertificateFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(issuer.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server else
                    ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if names:
        builder = builder.add_extension(_alt_names(names), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    files = CertificateFiles(directory / f"{stem}.pem", directory / f"{stem}-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, files.key)
    return files


def make_tls_files(directory: Path, *, ca_name: str = "txstream test CA",
                   server_names: Sequence[str] = LOOPBACK_NAMES) -> TlsFiles:
    """Write ``ca.pem``, ``server.pem``/``server-key.pem``, ``client.pem``/``client-key.pem``.

    The server certificate names ``server_names`` (IP addresses or DNS names), so clients
    can check the host name; the client certificate is for mutual TLS.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder()
          .subject_name(_name(ca_name)).issuer_name(_name(ca_name))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = _issue(directory, "server", server_names[0] if server_names else "server", ca,
                    ca_key, server=True, names=server_names)
    client = _issue(directory, "client", "txstream client", ca, ca_key, server=False, names=())
    return TlsFiles(ca_path, server, client)
