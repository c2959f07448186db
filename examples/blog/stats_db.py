"""Analytic counters: reads and clicks per post, reads per UTM source/medium/campaign.

Each event is counted in one transaction together with the insert of its id into
``analytic_events``: a task that is retried after its counters were committed (the worker died
before its Ack reached the broker) finds its id there and counts nothing. The effect is exactly
once even though the broker delivers at least once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from examples.blog.db import now
from examples.blog.links import Utm


@dataclass(slots=True)
class UtmReads:
    utm_source: str
    utm_medium: str
    utm_campaign: str
    reads: int


@dataclass(slots=True)
class PostStats:
    """What ``GET /posts/{id}/stats`` shows."""

    post_id: int
    reads: int = 0
    clicks: int = 0
    subscribers_who_clicked: int = 0
    emails_sent: int = 0
    reads_by_utm: list[UtmReads] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def record_read(conn: sqlite3.Connection, event_id: str, post_id: int, utm: Utm | None) -> bool:
    """Count one read of a post (and of its campaign); False when ``event_id`` was counted."""
    with conn:
        if not _claim(conn, event_id, "read", post_id):
            return False
        conn.execute(
            "INSERT INTO post_counters (post_id, reads) VALUES (?, 1) "
            "ON CONFLICT (post_id) DO UPDATE SET reads = reads + 1",
            (post_id,),
        )
        if utm is not None:
            conn.execute(
                "INSERT INTO utm_reads (post_id, source, medium, campaign, reads) "
                "VALUES (?, ?, ?, ?, 1) ON CONFLICT (post_id, source, medium, campaign) "
                "DO UPDATE SET reads = reads + 1",
                (post_id, utm.source, utm.medium, utm.campaign),
            )
    return True


def record_click(conn: sqlite3.Connection, event_id: str, post_id: int, subscriber_id: int) -> bool:
    """Count one click on a subscriber's link; False when ``event_id`` was counted."""
    with conn:
        if not _claim(conn, event_id, "click", post_id):
            return False
        conn.execute(
            "INSERT INTO post_counters (post_id, clicks) VALUES (?, 1) "
            "ON CONFLICT (post_id) DO UPDATE SET clicks = clicks + 1",
            (post_id,),
        )
        conn.execute(
            "INSERT INTO subscriber_clicks (post_id, subscriber_id, clicks) VALUES (?, ?, 1) "
            "ON CONFLICT (post_id, subscriber_id) DO UPDATE SET clicks = clicks + 1",
            (post_id, subscriber_id),
        )
    return True


def post_stats(conn: sqlite3.Connection, post_id: int) -> PostStats:
    """The counters of one post (zeros for a post nobody has read yet)."""
    stats = PostStats(post_id)
    row = conn.execute(
        "SELECT reads, clicks FROM post_counters WHERE post_id = ?", (post_id,)
    ).fetchone()
    if row is not None:
        stats.reads, stats.clicks = row
    stats.subscribers_who_clicked = _count(
        conn, "SELECT COUNT(*) FROM subscriber_clicks WHERE post_id = ?", post_id
    )
    stats.emails_sent = _count(conn, "SELECT COUNT(*) FROM deliveries WHERE post_id = ?", post_id)
    rows = conn.execute(
        "SELECT source, medium, campaign, reads FROM utm_reads WHERE post_id = ? "
        "ORDER BY reads DESC, source, medium, campaign",
        (post_id,),
    )
    stats.reads_by_utm = [UtmReads(*row) for row in rows]
    return stats


def _claim(conn: sqlite3.Connection, event_id: str, kind: str, post_id: int) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO analytic_events (event_id, kind, post_id, recorded_at) "
        "VALUES (?, ?, ?, ?)",
        (event_id, kind, post_id, now()),
    )
    return cursor.rowcount == 1


def _count(conn: sqlite3.Connection, query: str, post_id: int) -> int:
    return int(conn.execute(query, (post_id,)).fetchone()[0])
