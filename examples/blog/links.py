"""Links in notification emails: signed click tokens and UTM parameters.

An email links to ``/r/<token>?utm_source=email&utm_medium=notification&utm_campaign=post-<id>
&sid=<subscriber id>``. The token names the post and the subscriber and is signed with the
link secret, so nobody can forge clicks for other subscribers; the redirect sends the reader on
to ``/posts/<id>`` with the same query, which is how the read is attributed to the campaign.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

SOURCE = "email"
MEDIUM = "notification"
SUBSCRIBER_PARAM = "sid"
_SIGNATURE_HEX_CHARS = 20


@dataclass(frozen=True, slots=True)
class Utm:
    """The campaign a visit came from (the three UTM parameters the stats count by)."""

    source: str
    medium: str
    campaign: str

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Utm | None:
        """The UTM parameters of a request's query, or None when ``utm_source`` is absent."""
        source = query.get("utm_source", "")
        if not source:
            return None
        return cls(source, query.get("utm_medium", ""), query.get("utm_campaign", ""))


def campaign(post_id: int) -> str:
    """The campaign name of the notification about one post."""
    return f"post-{post_id}"


def notification_query(post_id: int, subscriber_id: int) -> dict[str, str]:
    """The query string parameters of every link in one subscriber's notification."""
    return {
        "utm_source": SOURCE,
        "utm_medium": MEDIUM,
        "utm_campaign": campaign(post_id),
        SUBSCRIBER_PARAM: str(subscriber_id),
    }


def click_token(secret: str, post_id: int, subscriber_id: int) -> str:
    """``<post>.<subscriber>.<signature>``: deterministic, so a resent email has the same link."""
    return f"{post_id}.{subscriber_id}.{_sign(secret, post_id, subscriber_id)}"


def parse_click_token(secret: str, token: str) -> tuple[int, int] | None:
    """(post id, subscriber id) of a genuine token; None for a malformed or forged one."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    post_id, subscriber_id = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(parts[2], _sign(secret, post_id, subscriber_id)):
        return None
    return post_id, subscriber_id


def notification_link(public_url: str, secret: str, post_id: int, subscriber_id: int) -> str:
    """The tracked link to a post, as it appears in one subscriber's email."""
    token = click_token(secret, post_id, subscriber_id)
    query = urlencode(notification_query(post_id, subscriber_id))
    return f"{public_url}/r/{token}?{query}"


def _sign(secret: str, post_id: int, subscriber_id: int) -> str:
    message = f"{post_id}.{subscriber_id}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return digest[:_SIGNATURE_HEX_CHARS]
