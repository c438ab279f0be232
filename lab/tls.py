"""The lab's TLS: a CA made per lab run and a server certificate for Datera MGT1.

Clients verify the lab like any real cluster: `verify=<ca pem>` with requests or dfs_sdk. The
CA's private key is never written to disk; it signs the one server certificate and is gone.
"""
import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for an endless demo at a booth, short enough to be obviously a lab certificate.
VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path      # the lab CA certificate (public)
    cert: Path    # the server certificate (public)
    key: Path     # the server private key (0600)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vancouver lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # O_CREAT's mode does not apply to a file that already existed


def issue_server_cert(out_dir: Path, ip: str, dns_name: str) -> TlsFiles:
    """Writes ca.pem, <dns_name>.pem and <dns_name>.key under out_dir for a server on `ip`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    # Back-date a little so a client whose clock is slightly behind still accepts it.
    not_before, not_after = now - datetime.timedelta(minutes=5), now + VALIDITY

    # P-256 keys: generated in microseconds, unlike RSA, which keeps lab boot fast.
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Vancouver lab CA")
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(dns_name)).issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName(dns_name)]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))

    files = TlsFiles(ca=out_dir / "ca.pem", cert=out_dir / f"{dns_name}.pem",
                     key=out_dir / f"{dns_name}.key")
    _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(files.key, key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()), 0o600)
    return files
