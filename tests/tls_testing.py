"""Certificates for the security tests, made with ``cryptography``: CAs, server and client certs.

Every PEM file is padded to a fixed size (text after the PEM block is ignored by OpenSSL), so
that a test can swap a file's content in place without changing its size, and then put its old
modification time back: a change only a SIGHUP can reveal.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM_FILE_SIZE = 4096
_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM bytes (unpadded)."""

    cert: bytes
    key: bytes


@dataclass(frozen=True)
class Authority:
    """A CA that issues server and client certificates."""

    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY).not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return cls(name, cert, key)

    def issue(self, name: str, *, server: bool, expired: bool = False) -> Issued:
        """A leaf certificate: for 127.0.0.1 and localhost (server) or a client; optionally
        one whose validity ended yesterday."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        start, end = (now - 10 * _DAY, now - _DAY) if expired else (now - _DAY, now + 30 * _DAY)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )  # fmt: skip
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())  # fmt: skip
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def padded(pem: bytes) -> bytes:
    """``pem`` followed by newlines up to :data:`PEM_FILE_SIZE` bytes."""
    assert len(pem) < PEM_FILE_SIZE
    return pem + b"\n" * (PEM_FILE_SIZE - len(pem))


def write_pem(path: Path, pem: bytes) -> None:
    """Replace ``path`` atomically (a new file renamed over it), padded."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(padded(pem))
    os.replace(tmp, path)


def overwrite_keeping_stat(path: Path, pem: bytes) -> None:
    """Rewrite ``path`` in place with the same size and modification time as before."""
    before = path.stat()
    with path.open("r+b") as file:
        file.write(padded(pem))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino)  # fmt: skip


@dataclass(frozen=True)
class Pki:
    """The session's certificates: two CAs and what they issued, PEM bytes."""

    ca: Authority
    other_ca: Authority
    server: Issued
    other_server: Issued  # for 127.0.0.1, by other_ca
    client: Issued
    expired_client: Issued
    foreign_client: Issued  # by other_ca

    @classmethod
    def create(cls) -> Pki:
        ca, other = Authority.create("Leasq Test CA"), Authority.create("Other Test CA")
        return cls(
            ca=ca, other_ca=other,
            server=ca.issue("leasq-broker", server=True),
            other_server=other.issue("leasq-broker-2", server=True),
            client=ca.issue("worker-1", server=False),
            expired_client=ca.issue("worker-old", server=False, expired=True),
            foreign_client=other.issue("intruder", server=False),
        )  # fmt: skip


@dataclass(frozen=True)
class ServerFiles:
    """The broker's PEM files in a directory: certificate, key and client CA."""

    cert: Path
    key: Path
    client_ca: Path

    @classmethod
    def write(cls, directory: Path, pki: Pki) -> ServerFiles:
        files = cls(directory / "server.crt", directory / "server.key", directory / "clients.crt")
        files.install(pki.server, pki.ca.pem)
        return files

    def install(self, server: Issued, client_ca: bytes) -> None:
        """Replace the files (atomically, each by rename): key first, then certificate."""
        write_pem(self.key, server.key)
        write_pem(self.cert, server.cert)
        write_pem(self.client_ca, client_ca)

    def flags(self, *, mutual: bool) -> dict[str, object]:
        """``broker_factory`` overrides serving TLS (and requiring client certs if mutual)."""
        flags: dict[str, object] = {"tls_cert": self.cert, "tls_key": self.key}
        if mutual:
            flags["tls_client_ca"] = self.client_ca
        return flags


async def wait_for_log(log_text: Callable[[], str], text: str, count: int = 1,
                       within: float = 15.0) -> None:
    """Until ``text`` appears ``count`` times in the log ``log_text()`` returns."""
    deadline = time.monotonic() + within
    while log_text().count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged {count} times within {within}s:\n"
                                 + log_text()[-3000:])  # fmt: skip
        await asyncio.sleep(0.02)


def served_certificate(address: str) -> bytes:
    """The PEM certificate a TLS server at ``host:port`` presents (not verified)."""
    host, _, port = address.rpartition(":")
    return ssl.get_server_certificate((host, int(port))).encode()


def same_certificate(pem_a: bytes, pem_b: bytes) -> bool:
    return x509.load_pem_x509_certificate(pem_a) == x509.load_pem_x509_certificate(pem_b)
