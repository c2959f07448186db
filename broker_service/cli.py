"""The ``leasq`` command: ``leasq serve`` runs a broker, ``leasq worker`` runs a worker, and the
operator commands (``leasq stats``, ``queue``, ``task``, ...: :mod:`leasq_broker.operator_cli`)
inspect and operate a running broker.

Every ``serve`` flag falls back to a ``LEASQ_<NAME>`` environment variable (``--redis-url`` to
``LEASQ_REDIS_URL``), then to the :class:`BrokerConfig` default, so that containers and
supervisors configure the broker without a command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from leasq_broker.config import BrokerConfig
from leasq_broker.logs import LOG_FORMATS, LOG_LEVELS, configure_logging

ENV_PREFIX = "LEASQ_"


def _optional(text: str) -> str | None:
    return text or None


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {text!r}")
    return value


def _processes(text: str) -> int:
    from leasq_broker.supervisor import process_count

    return process_count(text)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must not be negative, got {text!r}")
    return value


def _redis_url(text: str) -> str | None:
    """An empty URL means the embedded Redis; a URL the broker cannot use is refused here."""
    from leasq_broker.redis_connection import check_redis_url

    return check_redis_url(text) if text else None


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(f"must not be negative, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be positive, got {text!r}")
    return value


def _switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "on", "true", "yes"):
        return True
    if lowered in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"must be on or off, got {text!r}")


def _url_path(text: str) -> str:
    from leasq_broker.dashboard.site import normalize_prefix

    return normalize_prefix(text)


def _choice(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {text!r}")
        return text.lower()

    return parse


@dataclasses.dataclass(frozen=True, slots=True)
class Flag:
    """One ``serve`` flag: its name, the config field it sets, its parser and its help."""

    name: str
    field: str
    parse: Callable[[str], Any]
    help: str
    # A switch: ``--name`` alone means on (``--name off`` turns it off).
    switch: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")


SERVE_FLAGS = (
    Flag("listen", "listen", str, "host:port to serve gRPC on; port 0 picks a free port"),
    Flag("redis-url", "redis_url", _redis_url,
         "Redis to keep tasks in (redis://, rediss://, unix://, "
         "redis+sentinel://host:port,.../service, or a Redis Cluster: "
         "redis+cluster://host:port,...; see docs/redis.md); unset or empty: start a "
         "private redis-server with AOF under --data-dir"),
    Flag("redis-min-replicas-ack", "redis_min_replicas_ack", _non_negative_int,
         "replicas that must acknowledge each state change (Redis WAIT) before it is "
         "confirmed; fewer in time: the call fails UNAVAILABLE; 0: off"),
    Flag("redis-min-replicas-timeout", "redis_min_replicas_timeout_ms", _positive_int,
         "milliseconds a state change waits for --redis-min-replicas-ack replicas"),
    Flag("data-dir", "data_dir", Path, "directory of the private Redis (socket, AOF, log)"),
    Flag("max-payload-bytes", "max_payload_bytes", _positive_int,
         "largest task payload or result accepted, in bytes"),
    Flag("grace", "grace_seconds", _non_negative_float,
         "seconds in-flight calls get to finish on SIGTERM/SIGINT"),
    Flag("max-waiting-leases", "max_waiting_leases", _positive_int,
         "Lease calls that may wait for a task at once; one more answers RESOURCE_EXHAUSTED"),
    Flag("lease-lost-cap", "lease_lost_cap", _positive_int,
         "expired leases of one task before it is archived as poison"),
    Flag("release-cap", "release_cap", _positive_int,
         "releases of one task (workers without its handler) before it is archived"),
    Flag("archive-max-age", "archive_max_age_seconds", _non_negative_float,
         "seconds an archived task is kept"),
    Flag("archive-max-size", "archive_max_size", _positive_int,
         "most archived tasks kept per queue"),
    Flag("auth-token", "auth_token", _optional,
         "require 'authorization: Bearer <token>' on every call except health and reflection"),
    Flag("auth-tokens-file", "auth_tokens_file", _optional_path,
         "TOML file of hashed tokens with roles (producer, worker, reader, admin) and queue "
         "patterns; re-read on SIGHUP and when it changes (see docs/security.md)"),
    Flag("tls-cert", "tls_cert", _optional_path,
         "PEM certificate chain of the server; with --tls-key, serve TLS only"),
    Flag("tls-key", "tls_key", _optional_path, "PEM private key of --tls-cert"),
    Flag("tls-client-ca", "tls_client_ca", _optional_path,
         "PEM CA bundle: require client certificates signed by it (mutual TLS)"),
    Flag("max-message-bytes", "max_message_bytes", _positive_int,
         "largest gRPC message received or sent, in bytes"),
    Flag("http-listen", "http_listen", _optional,
         "host:port of the HTTP server of /metrics (Prometheus) and /healthz, e.g. "
         "127.0.0.1:9464; unset or empty: no HTTP server"),
    Flag("dashboard", "dashboard", _switch,
         "serve the web dashboard on the HTTP server (--http-listen, else 127.0.0.1:9464); "
         "--dashboard alone means on", switch=True),
    Flag("dashboard-path", "dashboard_path", _url_path,
         "URL path of the dashboard, e.g. /leasq behind a reverse proxy"),
    Flag("worker-ttl", "worker_ttl_seconds", _positive_float,
         "seconds after its latest call that a worker leaves ListWorkers"),
    Flag("log-format", "log_format", _choice(("auto", *LOG_FORMATS[1:])),
         "auto (console on a terminal, else json), json or console"),
    Flag("log-level", "log_level", _choice(LOG_LEVELS),
         "debug (adds a line per call), info, warning, error or critical"),
    Flag("key-prefix", "key_prefix", str, "prefix of every Redis key, to share one Redis"),
    Flag("schedules", "schedules_file", _optional_path,
         "TOML file of periodic schedules; the stored schedules are made equal to it at start "
         "and whenever it changes (a bad file is refused at start, and ignored with an error "
         "logged later)"),
    Flag("queue-settings-file", "queue_settings_file", _optional_path,
         "TOML file of per-queue settings (rate limit, max active, groups, ...); applied at "
         "start and whenever it changes, settings it does not name left as they are (see "
         "docs/queue-settings-file.md)"),
    Flag("processes", "processes", _processes,
         "broker processes serving the same gRPC and HTTP ports (SO_REUSEPORT), each with its "
         "own event loop, under one parent; N or auto (one per CPU); see docs/scaling.md"),
)  # fmt: skip
METAVARS = {"listen": "HOST:PORT", "grace": "SECONDS", "archive-max-age": "SECONDS",
            "http-listen": "HOST:PORT", "schedules": "PATH", "auth-tokens-file": "PATH",
            "queue-settings-file": "PATH", "dashboard": "on|off", "dashboard-path": "PATH",
            "tls-cert": "PATH", "tls-key": "PATH", "tls-client-ca": "PATH",
            "redis-min-replicas-ack": "N", "redis-min-replicas-timeout": "MS"}
READY_FILE = Flag("ready-file", "", Path, "write the bound host:port here once serving")


def _argparse_type(flag: Flag) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return flag.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = flag.name
    return convert


def _shown_default(flag: Flag) -> str:
    defaults = {f.name: f.default for f in dataclasses.fields(BrokerConfig)}
    value = defaults.get(flag.field)
    return "unset" if value is None else str(value)


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run a broker",
        description="Run a Leasq broker. Each flag falls back to its LEASQ_* environment "
        "variable, then to the default shown.",
    )
    for flag in SERVE_FLAGS:
        parser.add_argument(
            f"--{flag.name}",
            dest=flag.name.replace("-", "_"),
            type=_argparse_type(flag),
            nargs="?" if flag.switch else None,
            const=True if flag.switch else None,
            metavar=METAVARS.get(flag.name, flag.name.split("-")[-1].upper()),
            help=f"{flag.help} (env {flag.env}; default: {_shown_default(flag)})",
        )
    parser.add_argument(
        "--ready-file", type=Path, metavar="PATH",
        help=f"{READY_FILE.help} (env {READY_FILE.env}; default: unset)",
    )  # fmt: skip
    # Set by the parent of --processes N on each child it starts (1..N); not for people.
    parser.add_argument("--process-index", type=_positive_int, help=argparse.SUPPRESS)
    return parser


def resolve_config(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[BrokerConfig, Path | None]:
    """Flags first, then ``LEASQ_*`` variables, then defaults; raises ValueError naming the
    variable for a malformed environment value."""
    values: dict[str, Any] = {}
    for flag in SERVE_FLAGS:
        value = getattr(args, flag.name.replace("-", "_"))
        if value is None and flag.env in environ:
            try:
                value = flag.parse(environ[flag.env])
            except ValueError as exc:
                raise ValueError(f"{flag.env}: {exc}") from exc
            if value is None:  # an empty optional variable means "unset"
                continue
        if value is not None:
            values[flag.field] = value
    if getattr(args, "process_index", None) is not None:
        values["process_index"] = args.process_index
    ready_file = args.ready_file
    if ready_file is None and environ.get(READY_FILE.env):
        ready_file = Path(environ[READY_FILE.env])
    return BrokerConfig(**values), ready_file


def _ready_writer(path: Path | None) -> Callable[[str], None] | None:
    if path is None:
        return None

    def ready(address: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(address + "\n")
        tmp.replace(path)  # atomic: a reader never sees half an address

    return ready


def run_serve(
    config: BrokerConfig, ready_file: Path | None, serve_argv: Sequence[str] = ()
) -> int:
    """Run the broker in this process until it is told to stop, or (``--processes`` above 1)
    run ``config.processes`` broker processes with ``serve_argv``; the process exit code."""
    if config.processes > 1 and config.process_index is None:
        from leasq_broker.supervisor import run_supervisor

        try:
            return run_supervisor(config, serve_argv, _ready_writer(ready_file))
        finally:
            if ready_file is not None:
                ready_file.unlink(missing_ok=True)
    # Imported here, not at the top: every `leasq` command imports this module, and the
    # operator commands should not pay for Redis, grpc servers and the schedule parser.
    import structlog
    from redis.exceptions import RedisError

    from leasq_broker.edge.tokens import TokenFileError
    from leasq_broker.embedded_redis import EmbeddedRedisError
    from leasq_broker.schedules.file import ScheduleFileError
    from leasq_broker.server import serve
    from leasq_broker.settings.file import QueueSettingsFileError

    configure_logging(config.log_level, config.log_format)
    log = structlog.get_logger("leasq_broker.cli")
    try:
        if config.process_index is not None:
            from leasq_broker.supervisor import mark_child

            mark_child(config.process_index)
        asyncio.run(serve(config, ready=_ready_writer(ready_file)))
    except (OSError, RedisError, EmbeddedRedisError, ScheduleFileError, TokenFileError,
            QueueSettingsFileError) as exc:
        log.error("broker failed", error=str(exc), error_type=type(exc).__name__)
        return 1
    finally:
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    return 0


def run_worker(argv: list[str]) -> int:
    """Hand ``leasq worker ...`` to the worker runtime, imported only when asked for."""
    try:
        from leasq_worker.cli import main as worker_main  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        print(f"leasq worker: the worker runtime is not available ({exc}); "
              "install the leasq package with its worker runtime", file=sys.stderr)  # fmt: skip
        return 2
    return int(worker_main(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leasq", description="Leasq task broker.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_serve_parser(subparsers)
    subparsers.add_parser("worker", add_help=False, help="run a worker (see `leasq worker --help`)")
    token = subparsers.add_parser(
        "token", help="make a bearer token, or print the sha256 of one for --auth-tokens-file"
    )
    token.add_argument(
        "action", choices=("new", "hash"),
        help="new: print a fresh token and its [[token]] entry; hash: print the sha256 of the "
        "token read from standard input",
    )  # fmt: skip
    return parser


def run_token(action: str) -> int:
    """``leasq token new`` / ``leasq token hash`` (the token is read from stdin, so that it
    stays out of shell history and process lists)."""
    from leasq_broker.edge.tokens import hash_token, new_token

    if action == "new":
        token = new_token()
        print(f"# token (give it to the client; only its hash is kept): {token}")
        print(f'[[token]]\nname = "CHANGE-ME"\nsha256 = "{hash_token(token)}"\nrole = "producer"')
        return 0
    token = sys.stdin.readline().rstrip("\r\n")
    if not token:
        print("leasq token hash: no token on standard input", file=sys.stderr)
        return 2
    print(hash_token(token))
    return 0


def _runs_a_worker(args: list[str]) -> bool:
    """``leasq worker MODULE:REGISTRY ...`` (or ``--help``, or nothing) runs a worker;
    ``leasq worker ls``, ``quiet ID`` and ``stop ID`` are operator commands."""
    from leasq_broker.operator_cli.app import WORKER_OPERATOR_COMMANDS

    if args[:1] != ["worker"]:
        return False
    return len(args) == 1 or args[1] not in WORKER_OPERATOR_COMMANDS


def main(argv: list[str] | None = None) -> int:
    """``serve``, ``token`` and running a worker parse their own arguments (argparse); every
    other command is an operator command of :mod:`leasq_broker.operator_cli` (click), which
    also answers ``leasq --help`` with the whole list."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if _runs_a_worker(args_list):
        return run_worker(args_list[1:])
    if args_list[:1] not in (["serve"], ["token"]):
        from leasq_broker.operator_cli.app import run as run_operator

        if not args_list:  # no command: the overview, as a usage error
            with contextlib.redirect_stdout(sys.stderr):
                run_operator(["--help"])
            return 2
        return run_operator(args_list)
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command == "token":
        return run_token(args.action)
    try:
        config, ready_file = resolve_config(args, os.environ)
    except ValueError as exc:
        parser.error(str(exc))
    return run_serve(config, ready_file, args_list[1:])
