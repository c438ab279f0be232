"""Nova key pairs: per user, imported or generated. No HTTP.

Facts: nova/compute/api.py KeypairAPI and nova/crypto.py at 13.0.0 / 16.0.0:
- names: 1-255 characters of letters, digits, '-', '_' and ' ' ("Keypair data is invalid:
  Keypair name contains unsafe characters"), unique per user (409 "Key pair 'x' already
  exists.");
- an imported ssh key must parse ("Keypair data is invalid: failed to generate
  fingerprint"); its fingerprint is the MD5 of the key blob as colon-separated hex;
- a generated ssh key is RSA 2048 (private key in PEM, returned once); an x509 pair (type
  x509, microversion 2.2) is a self-signed certificate whose fingerprint is its SHA-1;
- the key_pairs quota counts per user ("Quota exceeded, too many key pairs.": 403).
"""
import base64
import datetime
import hashlib
import string
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from lab.openstack import errors

from .records import now_iso

NAME_CHARS = set(string.digits + string.ascii_letters + "-_ ")


@dataclass
class Keypair:
    id: int
    user_id: str
    name: str
    public_key: str
    fingerprint: str
    type: str = "ssh"
    created_at: str = ""


def _invalid(reason: str) -> errors.BadRequest:
    return errors.BadRequest(f"Keypair data is invalid: {reason}")


def ssh_fingerprint(public_key: str) -> str:
    try:
        key = serialization.load_ssh_public_key(public_key.strip().encode())
        blob = key.public_bytes(serialization.Encoding.OpenSSH,
                                serialization.PublicFormat.OpenSSH).split()[1]
        digest = hashlib.md5(base64.b64decode(blob)).hexdigest()
    except (ValueError, IndexError, TypeError):
        raise _invalid("failed to generate fingerprint") from None
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def x509_fingerprint(pem: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise _invalid("failed to generate X509 fingerprint") from None
    return ":".join(f"{b:02x}" for b in cert.fingerprint(hashes.SHA1()))


def generate(kind: str, name: str) -> tuple[str, str]:
    """(private key PEM, public key) of a new RSA 2048 pair; x509: the public part is a
    self-signed certificate (nova/crypto.py generate_winrm_x509_cert)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    if kind == "ssh":
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
        return private, f"{public} Generated-by-Nova"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


class KeypairsMixin:
    """ComputeModel's key pairs: self.keypairs = {(user_id, name): Keypair}."""

    def keypairs_of(self, user_id: str) -> list[Keypair]:
        with self.lock:
            return [k for (u, _), k in self.keypairs.items() if u == user_id]

    def get_keypair(self, user_id: str, name: str) -> Keypair:
        with self.lock:
            kp = self.keypairs.get((user_id, name))
        if kp is None:
            raise errors.NotFound(f"Keypair {name} not found for user {user_id}")
        return kp

    def create_keypair(self, user_id: str, project_id: str, name, public_key=None,
                       kind: str = "ssh") -> tuple[Keypair, str | None]:
        """(keypair, private key PEM or None when imported)."""
        if not isinstance(name, str) or not 1 <= len(name) <= 255 or set(name) - NAME_CHARS:
            raise _invalid("Keypair name contains unsafe characters")
        private = None
        if public_key is None:
            private, public_key = generate(kind, name)
        fingerprint = (ssh_fingerprint(public_key) if kind == "ssh"
                       else x509_fingerprint(public_key))
        with self.lock:
            if (user_id, name) in self.keypairs:
                raise errors.Conflict(f"Key pair '{name}' already exists.")
            limit = self.quotas.get(project_id, {}).get("key_pairs", 100)
            if limit >= 0 and len([1 for (u, _) in self.keypairs if u == user_id]) >= limit:
                raise errors.Forbidden("Quota exceeded, too many key pairs.")
            next_id = max((k.id for k in self.keypairs.values()), default=0) + 1
            kp = Keypair(next_id, user_id, name, public_key, fingerprint, kind, now_iso())
            self.keypairs[(user_id, name)] = kp
        return kp, private

    def delete_keypair(self, user_id: str, name: str) -> None:
        self.get_keypair(user_id, name)
        with self.lock:
            self.keypairs.pop((user_id, name), None)
