"""TLS and mutual TLS on the gRPC port, with certificates replaced without a restart.

gRPC asks :meth:`CertificateFiles.fetch` before every TLS handshake whether the certificates
changed. The answer comes from the files' modification times (a ``stat`` per new connection),
or from a SIGHUP (:meth:`CertificateFiles.reload`). New certificates are checked before use (the
key must match the certificate, the CA bundle must parse): a half-written or mismatched set is
logged and the certificates in use stay in force, so a rotation done file by file (certificate,
then key) takes effect once both are in place. Connections already open keep their session.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
import grpc.aio
import structlog

from leasq_broker.config import BrokerConfig

log = structlog.get_logger(__name__)

Signature = tuple[tuple[int, int, int], ...]


class TlsError(OSError):
    """A certificate, key or CA file cannot be used; the message names it."""


class _Changing(TlsError):
    """The files changed while they were read: read them again at the next handshake."""


def _no_password() -> str:
    raise TlsError("encrypted private keys are not supported: give the key unencrypted")


@dataclass(frozen=True, slots=True)
class _Loaded:
    signature: Signature
    config: grpc.ServerCertificateConfiguration


class CertificateFiles:
    """The server's certificate chain, key and (for mTLS) client CA, read from PEM files."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.cert = cert
        self.key = key
        self.client_ca = client_ca
        self._lock = threading.Lock()
        self._forced = False
        self._signature: Signature | None = None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def _paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) if self.client_ca is None else (self.cert, self.key,
                                                                     self.client_ca)  # fmt: skip

    def _stat(self) -> Signature:
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in map(Path.stat, self._paths()))

    def _load(self) -> _Loaded:
        """Read and check the files; raises TlsError."""
        try:
            before = self._stat()
            cert, key = self.cert.read_bytes(), self.key.read_bytes()
            roots = self.client_ca.read_bytes() if self.client_ca is not None else None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, self.key, password=_no_password)
            if self.client_ca is not None:
                context.load_verify_locations(cafile=self.client_ca)
            if self._stat() != before:
                raise _Changing("the files changed while they were read")
        except TlsError:
            raise
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise TlsError(f"cannot use {', '.join(map(str, self._paths()))}: {exc}") from exc
        config = grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=roots)
        return _Loaded(before, config)

    def initial(self) -> grpc.ServerCertificateConfiguration:
        """The certificates to start with; raises TlsError."""
        loaded = self._load()
        self._signature = loaded.signature
        return loaded.config

    def reload(self) -> None:
        """Re-read the files before the next handshake, changed or not (SIGHUP)."""
        self._forced = True

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's fetcher, called before each handshake: new certificates, or None to keep."""
        with self._lock:
            try:
                changed = self._stat() != self._signature
            except OSError:
                changed = False  # a file is being replaced: look again at the next handshake
            if not (changed or self._forced):
                return None
            self._forced = False
            try:
                loaded = self._load()
            except _Changing:
                return None
            except TlsError as exc:
                log.error("tls certificates not reloaded; the ones in use stay in force",
                          error=str(exc))  # fmt: skip
                # Reported once per version of the files, not on every handshake.
                self._signature = self._stat_or_none()
                return None
            self._signature = loaded.signature
        log.info("tls certificates reloaded", cert=str(self.cert), mutual=self.mutual)
        return loaded.config

    def _stat_or_none(self) -> Signature | None:
        try:
            return self._stat()
        except OSError:
            return None

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials that follow the files; client certificates required for mTLS."""
        # The stubs leave out the documented None ("no change") of the fetcher's answer.
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self.fetch)
        return grpc.dynamic_ssl_server_credentials(
            self.initial(), fetch, require_client_authentication=self.mutual
        )


def certificate_files(config: BrokerConfig) -> CertificateFiles | None:
    """The certificate files of ``config``, or None for plaintext."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    return CertificateFiles(config.tls_cert, config.tls_key, config.tls_client_ca)


def transport_name(files: CertificateFiles | None) -> str:
    """``plaintext``, ``tls`` or ``mtls``, for the log."""
    if files is None:
        return "plaintext"
    return "mtls" if files.mutual else "tls"


def add_port(server: grpc.aio.Server, listen: str, files: CertificateFiles | None) -> int:
    """Bind ``listen``, with TLS when there are certificate files; the bound port."""
    try:
        if files is None:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, files.server_credentials())
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {listen}: {exc}") from exc
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return port
