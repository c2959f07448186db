"""How the operator commands reach a broker: flags, then ``LEASQ_*`` variables, then a TOML
config file, then defaults; and the :class:`leasq_sdk.Client` built from the result.

The file (``--config``, else ``~/.config/leasq/cli.toml`` when it exists) holds the same keys
as the flags, e.g.::

    broker = "leasq.internal:50051"
    token = "..."
    tls_ca = "/etc/leasq/ca.pem"
    timeout = 5

It exists so that an operator does not repeat the address and token on every command; the
variables exist for scripts and containers. The client certificate variables are
``LEASQ_CLIENT_CERT`` / ``LEASQ_CLIENT_KEY``, not ``LEASQ_TLS_CERT``: that one is already the
*server* certificate of ``leasq serve``, and a shell that runs both must not mix them up.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leasq_sdk import Client
from leasq_sdk.channel import DEFAULT_TARGET

DEFAULT_CONFIG_PATH = Path("~/.config/leasq/cli.toml")
DEFAULT_TIMEOUT = 10.0


class ConfigError(Exception):
    """The config file is unreadable or holds a wrong key or value (a usage error)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything the commands need to reach the broker and print their results."""

    broker: str = DEFAULT_TARGET
    token: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    json: bool = False
    timeout: float = DEFAULT_TIMEOUT


#: The config file's keys and the type each must have.
_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "broker": (str,), "token": (str,), "tls": (bool,), "tls_ca": (str,), "tls_cert": (str,),
    "tls_key": (str,), "json": (bool,), "timeout": (int, float),
}


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The keys of the config file: ``path`` (which must exist), else the default file when
    it exists, else none."""
    explicit = path is not None
    chosen = (path or DEFAULT_CONFIG_PATH).expanduser()
    if not explicit and not chosen.is_file():
        return {}
    try:
        with chosen.open("rb") as file:
            values = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {chosen}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {chosen} is not valid TOML: {exc}") from exc
    for key, value in values.items():
        kinds = _KEY_TYPES.get(key)
        if kinds is None:
            known = ", ".join(_KEY_TYPES)
            raise ConfigError(f"config file {chosen}: unknown key {key!r} (known: {known})")
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise ConfigError(f"config file {chosen}: {key} must be a {kinds[0].__name__}")
    return values


def resolve(given: Mapping[str, Any], file_values: Mapping[str, Any]) -> Settings:
    """Settings from flags or variables (``given``: None where neither was set), then the
    config file, then the defaults."""
    defaults = Settings()
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        value = given.get(field.name)
        if value is None:
            value = file_values.get(field.name, getattr(defaults, field.name))
        values[field.name] = value
    values["timeout"] = float(values["timeout"])
    if values["timeout"] <= 0:
        raise ConfigError(f"timeout must be positive, got {values['timeout']:g}")
    if (values["tls_cert"] is None) != (values["tls_key"] is None):
        raise ConfigError("--tls-cert and --tls-key must be given together")
    return Settings(**values)


def connect(settings: Settings) -> Client:
    """A client for ``settings``. Calls do not wait for an unreachable broker: a command
    should say at once that it cannot reach it (idempotent calls are still retried within
    the timeout)."""
    return Client(
        settings.broker,
        tls=settings.tls,
        root_certificates=_path(settings.tls_ca),
        tls_cert=_path(settings.tls_cert),
        tls_key=_path(settings.tls_key),
        token=settings.token or None,
        timeout=settings.timeout,
        wait_for_ready=False,
        keepalive_time=None,
    )


def _path(value: str | None) -> str | None:
    return os.path.expanduser(value) if value else None
