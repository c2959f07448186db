"""Bearer tokens with roles: the tokens file, token hashing, and a store that follows the file.

The file is TOML, one ``[[token]]`` table per token; only the SHA-256 of a token is kept, so the
file (and a leaked copy of it) does not hold any usable secret::

    [[token]]
    name = "billing-api"          # shown in logs and refusals, never the token itself
    sha256 = "9f86d081884c7d65..."  # `leasq token hash` prints it
    role = "producer"             # producer, worker, reader, admin; or a list of them
    queues = ["billing", "invoice-*"]  # optional fnmatch patterns; absent: every queue

A presented token is hashed and looked up by its hash: how long the lookup takes depends on the
hash, never on how much of a secret a guess got right. Nothing here imports gRPC, so the
``leasq token`` command and the HTTP edge can use it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: Seconds between two checks of the tokens file for a change (besides SIGHUP).
FILE_CHECK_INTERVAL = 1.0
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEYS = frozenset({"name", "sha256", "role", "queues"})


class Role(StrEnum):
    """What a token may do; ``admin`` may do everything."""

    PRODUCER = "producer"
    WORKER = "worker"
    READER = "reader"
    ADMIN = "admin"


class TokenFileError(ValueError):
    """The tokens file cannot be read or is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token belongs to: its name, roles and queue patterns (None: every queue)."""

    name: str
    roles: frozenset[Role]
    queues: tuple[str, ...] | None = None

    def describe(self) -> str:
        """``'billing-api' (role producer, queues billing, invoice-*)`` for refusal messages."""
        roles = ", ".join(sorted(self.roles))
        scope = "" if self.queues is None else f", queues {', '.join(self.queues)}"
        return f"{self.name!r} (role {roles}{scope})"


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as the tokens file stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token: 32 bytes, URL-safe base64."""
    return secrets.token_urlsafe(32)


def _roles(where: str, value: Any) -> frozenset[Role]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise TokenFileError(f"{where}: role must be a role name or a list of them")
    try:
        return frozenset(Role(name) for name in names)
    except ValueError:
        raise TokenFileError(
            f"{where}: unknown role in {names!r}; roles: {', '.join(Role)}"
        ) from None


def _queues(where: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(q, str) and q for q in value):
        raise TokenFileError(f"{where}: queues must be a non-empty list of queue name patterns")
    return tuple(value)


def _entry(where: str, table: Any) -> tuple[str, Principal]:
    if not isinstance(table, Mapping):
        raise TokenFileError(f"{where}: must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise TokenFileError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    name, digest = table.get("name"), table.get("sha256")
    if not isinstance(name, str) or not name:
        raise TokenFileError(f"{where}: name is required")
    if not isinstance(digest, str) or not _HEX_SHA256.fullmatch(digest.lower()):
        raise TokenFileError(f"{where} ({name}): sha256 must be 64 hex digits")
    principal = Principal(name, _roles(f"{where} ({name})", table.get("role")),
                          _queues(f"{where} ({name})", table.get("queues")))  # fmt: skip
    return digest.lower(), principal


def parse_tokens(text: str, source: str = "tokens file") -> dict[str, Principal]:
    """The principals of a tokens file, by token hash; raises TokenFileError."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TokenFileError(f"{source}: {exc}") from exc
    unknown = set(document) - {"token"}
    if unknown:
        raise TokenFileError(f"{source}: unknown top-level keys {sorted(unknown)}")
    tables = document.get("token", [])
    if not isinstance(tables, list):
        raise TokenFileError(f"{source}: use [[token]] tables")
    by_hash: dict[str, Principal] = {}
    names: set[str] = set()
    for number, table in enumerate(tables, 1):
        digest, principal = _entry(f"{source}: token #{number}", table)
        if digest in by_hash or principal.name in names:
            raise TokenFileError(f"{source}: token #{number} ({principal.name}) repeats "
                                 "the name or the sha256 of an earlier token")  # fmt: skip
        by_hash[digest] = principal
        names.add(principal.name)
    return by_hash


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class TokenStore:
    """The tokens a broker accepts: the single ``--auth-token`` (admin) and a tokens file.

    The file is checked for a change at most once per :data:`FILE_CHECK_INTERVAL` and re-read
    at once by :meth:`reload` (SIGHUP). A file that turns bad is reported in the log and the
    tokens read before stay in force; a bad file at start raises :class:`TokenFileError`.
    """

    def __init__(self, *, admin_token: str | None = None, path: Path | None = None) -> None:
        self._fixed: dict[str, Principal] = {}
        if admin_token:
            self._fixed[hash_token(admin_token)] = Principal("auth-token",
                                                             frozenset({Role.ADMIN}))
        self._path = path
        self._signature: tuple[int, int, int] | None = None
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._tokens = dict(self._fixed)
        if path is not None:
            self._load(path, raise_errors=True)

    @property
    def count(self) -> int:
        return len(self._tokens)

    def lookup(self, token: str) -> Principal | None:
        """The principal of a presented token, or None for an unknown one."""
        if self._path is not None and time.monotonic() - self._checked >= FILE_CHECK_INTERVAL:
            self._check(self._path)
        return self._tokens.get(hash_token(token))

    def reload(self) -> None:
        """Re-read the tokens file now (SIGHUP)."""
        if self._path is not None:
            self._load(self._path, raise_errors=False)

    def _check(self, path: Path) -> None:
        self._checked = time.monotonic()
        try:
            changed = _signature(path) != self._signature
        except OSError:
            changed = True
        if changed:
            self._load(path, raise_errors=False)

    def _load(self, path: Path, *, raise_errors: bool) -> None:
        with self._lock:
            try:
                signature = _signature(path)
                tokens = parse_tokens(path.read_text(), str(path))
            except (OSError, UnicodeDecodeError, TokenFileError) as exc:
                if raise_errors:
                    raise TokenFileError(str(exc)) from exc
                log.error("tokens file not reloaded; the tokens read before stay in force",
                          path=str(path), error=str(exc))  # fmt: skip
                # Reported once per version of the file, not on every check.
                self._signature = _signature_or_none(path)
                return
            self._tokens = {**tokens, **self._fixed}
            self._signature = signature
        log.info("tokens file loaded", path=str(path), tokens=len(tokens))


def _signature_or_none(path: Path) -> tuple[int, int, int] | None:
    try:
        return _signature(path)
    except OSError:
        return None
