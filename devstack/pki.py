"""A development CA and one certificate per process, for `./dev up --mtls` and tests.

`ensure_pki(folder)` makes, on first use, a CA (`ca.pem`, `ca-key.pem`) and for each
name of the call graph a key and a certificate (`<name>.pem`, `<name>-key.pem`) with
the identity `spiffe://trading-platform/<name>` as URI SAN and, for every name, the DNS
name `common.tls.server_name(name)`, `localhost` and 127.0.0.1. A certificate that is
missing, expires within `RENEW_BEFORE`, or was not issued by the CA on disk is issued
again, so a restart rotates it. Keys are ECDSA P-256, files mode 0600.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.callgraph import CALL_GRAPH
from common.private_files import private_folder
from common.tls import identity_uri, server_name

CA_DAYS = 3650
CERT_DAYS = 90
RENEW_BEFORE = timedelta(days=14)
NAMES = tuple(CALL_GRAPH)  # svc_user, svc_inventory, svc_order, rest_bridge, operator


@dataclass(frozen=True)
class Identity:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def environment(self) -> dict[str, str]:
        return {
            "TLS_CA_FILE": str(self.ca_file),
            "TLS_CERT_FILE": str(self.cert_file),
            "TLS_KEY_FILE": str(self.key_file),
        }


def _write(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(folder: Path, common_name: str = "trading-platform dev CA") -> tuple[Path, Path]:
    """A new self-signed CA in `folder` (ca.pem, ca-key.pem)."""
    private_folder(folder, tighten=True)  # the CA key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(folder / "ca-key.pem", _key_pem(key))
    _write(folder / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))
    return folder / "ca.pem", folder / "ca-key.pem"


def issue(
    folder: Path,
    name: str,
    *,
    days: int = CERT_DAYS,
    valid_from: datetime | None = None,
    file_stem: str | None = None,
) -> Identity:
    """A certificate for `name` signed by the CA in `folder`."""
    ca_cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    start = valid_from or datetime.now(UTC) - timedelta(minutes=5)
    alternative_names = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(identity_uri(name)),
            x509.DNSName(server_name(name)),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(alternative_names, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    stem = file_stem or name
    _write(folder / f"{stem}-key.pem", _key_pem(key))
    _write(folder / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return Identity(folder / "ca.pem", folder / f"{stem}.pem", folder / f"{stem}-key.pem")


def _still_good(folder: Path, name: str, now: datetime) -> bool:
    cert_file = folder / f"{name}.pem"
    if not cert_file.is_file() or not (folder / f"{name}-key.pem").is_file():
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:
        return False
    return cert.not_valid_after_utc - now > RENEW_BEFORE


def ensure_pki(folder: Path, names: tuple[str, ...] = NAMES) -> dict[str, Identity]:
    """The CA (made once) and a current certificate for each name, by name."""
    if not (folder / "ca.pem").is_file() or not (folder / "ca-key.pem").is_file():
        make_ca(folder)
    now = datetime.now(UTC)
    identities = {}
    for name in names:
        if _still_good(folder, name, now):
            identities[name] = Identity(
                folder / "ca.pem", folder / f"{name}.pem", folder / f"{name}-key.pem"
            )
        else:
            identities[name] = issue(folder, name)
    return identities
