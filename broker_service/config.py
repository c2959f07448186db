"""Broker settings, built once by the CLI (flags, then ``LEASQ_*`` environment variables).

Nothing here reads the environment at import time: :func:`BrokerConfig` is a plain value that
tests construct directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_DASHBOARD_LISTEN = "127.0.0.1:9464"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Everything a broker process needs to know; defaults match the documented ones."""

    listen: str = DEFAULT_LISTEN
    # None: start a private redis-server under data_dir (the embedded default).
    redis_url: str | None = None
    data_dir: Path = Path(".leasq")
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    # Seconds in-flight calls get to finish on SIGTERM/SIGINT.
    grace_seconds: float = 10.0
    # Lease calls that may wait for a task at once (long polls); one more is refused.
    max_waiting_leases: int = 10_000
    # Leases that may expire on one task before it is archived as poison.
    lease_lost_cap: int = 5
    # Times a task may be released (Nack RELEASE: no handler) before it is archived as NoHandler.
    release_cap: int = 100
    # Archived tasks are removed after this age, and the archive is trimmed to this size per queue.
    archive_max_age_seconds: float = 90 * 24 * 3600
    archive_max_size: int = 10_000
    # Required bearer token on every call when set (health checks stay open).
    auth_token: str | None = None
    # "json", "console", or "auto" (console when stderr is a TTY).
    log_format: str = "auto"
    log_level: str = "info"
    # Key prefix, so that several deployments can share one Redis.
    key_prefix: str = "leasq"
    # A TOML file of schedules: the stored schedules are made equal to it at start and on change.
    schedules_file: Path | None = None
    # A TOML file of per-queue settings, applied at start and on change (fields it does not
    # name are left as they are).
    queue_settings_file: Path | None = None
    # TLS: server certificate chain and key (PEM), both or neither; with client_ca, clients must
    # present a certificate signed by it (mutual TLS). Re-read on SIGHUP and when they change.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # A TOML file of hashed bearer tokens with roles (see docs/security.md).
    auth_tokens_file: Path | None = None
    # Largest gRPC message received or sent, in bytes.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # host:port of the HTTP server of /metrics and /healthz; None: no HTTP server (port 0 picks
    # a free port). Off by default so that several brokers on one host never fight over a port.
    http_listen: str | None = None
    # A worker not seen (no Lease or Heartbeat call) for this long leaves ListWorkers, and an
    # operator's command for it lapses.
    worker_ttl_seconds: float = 60.0
    # The web dashboard on the HTTP server (see docs/dashboard.md), under this URL path. With
    # the dashboard on and no http_listen, the HTTP server listens on DEFAULT_DASHBOARD_LISTEN.
    dashboard: bool = False
    dashboard_path: str = "/"
    # Broker processes serving one port with SO_REUSEPORT (see leasq_broker.supervisor); a
    # parent runs them when above 1. process_index is set only in those children (1..N).
    processes: int = 1
    process_index: int | None = None
    # Every state change waits (Redis WAIT) for this many replicas to acknowledge it before it
    # is confirmed, for up to redis_min_replicas_timeout_ms; 0: off (docs/redis.md).
    redis_min_replicas_ack: int = 0
    redis_min_replicas_timeout_ms: int = 1000

    @property
    def http_address(self) -> str | None:
        """Where the HTTP server listens: ``http_listen``, or loopback when only the dashboard
        asks for it; None for no HTTP server."""
        if self.http_listen is None and self.dashboard:
            return DEFAULT_DASHBOARD_LISTEN
        return self.http_listen

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key must be given together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
