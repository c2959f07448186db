"""SQLite storage shared by the HTTP app and both workers: posts, subscribers, deliveries.

Every process opens its own short-lived connections (sqlite3 connections are not shared across
threads). WAL mode lets the app read while a worker writes; ``busy_timeout`` makes concurrent
writers wait for each other instead of failing. The analytic counters are in :mod:`.stats_db`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
-- One row per email that the SMTP server accepted: the key makes "sent twice" unrepresentable.
CREATE TABLE IF NOT EXISTS deliveries (
    post_id INTEGER NOT NULL REFERENCES posts(id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
    message_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (post_id, subscriber_id)
);
-- Analytic events already counted, by the id the app gave them: a retried task counts once.
CREATE TABLE IF NOT EXISTS analytic_events (
    event_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    post_id INTEGER NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS post_counters (
    post_id INTEGER PRIMARY KEY,
    reads INTEGER NOT NULL DEFAULT 0,
    clicks INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS utm_reads (
    post_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    medium TEXT NOT NULL,
    campaign TEXT NOT NULL,
    reads INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, source, medium, campaign)
);
CREATE TABLE IF NOT EXISTS subscriber_clicks (
    post_id INTEGER NOT NULL,
    subscriber_id INTEGER NOT NULL,
    clicks INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, subscriber_id)
);
"""


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    title: str
    body: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str


def now() -> str:
    """The current UTC time as ISO 8601 text (what every *_at column holds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def create_schema(path: Path) -> None:
    """Create the database file and its tables if they do not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for one unit of work, closed afterwards (commit with ``with conn:``)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        yield conn
    finally:
        conn.close()


def create_post(conn: sqlite3.Connection, title: str, body: str) -> Post:
    created_at = now()
    with conn:
        cursor = conn.execute(
            "INSERT INTO posts (title, body, created_at) VALUES (?, ?, ?)",
            (title, body, created_at),
        )
    assert cursor.lastrowid is not None
    return Post(cursor.lastrowid, title, body, created_at)


def get_post(conn: sqlite3.Connection, post_id: int) -> Post | None:
    row = conn.execute(
        "SELECT id, title, body, created_at FROM posts WHERE id = ?", (post_id,)
    ).fetchone()
    return None if row is None else Post(*row)


def add_subscriber(conn: sqlite3.Connection, email: str) -> Subscriber:
    """Subscribe ``email``; subscribing again is a no-op that returns the same subscriber."""
    with conn:
        conn.execute(
            "INSERT OR IGNORE INTO subscribers (email, created_at) VALUES (?, ?)", (email, now())
        )
    row = conn.execute("SELECT id, email FROM subscribers WHERE email = ?", (email,)).fetchone()
    return Subscriber(*row)


def get_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> Subscriber | None:
    row = conn.execute(
        "SELECT id, email FROM subscribers WHERE id = ?", (subscriber_id,)
    ).fetchone()
    return None if row is None else Subscriber(*row)


def subscriber_ids(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM subscribers ORDER BY id")]


def delivered(conn: sqlite3.Connection, post_id: int, subscriber_id: int) -> bool:
    """True when the notification about this post was already accepted for this subscriber."""
    row = conn.execute(
        "SELECT 1 FROM deliveries WHERE post_id = ? AND subscriber_id = ?",
        (post_id, subscriber_id),
    ).fetchone()
    return row is not None


def record_delivery(
    conn: sqlite3.Connection, post_id: int, subscriber_id: int, message_id: str
) -> bool:
    """Record an accepted email; False when it was recorded already."""
    with conn:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO deliveries (post_id, subscriber_id, message_id, sent_at) "
            "VALUES (?, ?, ?, ?)",
            (post_id, subscriber_id, message_id, now()),
        )
    return cursor.rowcount == 1
