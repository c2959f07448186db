"""The notification email: how it is written, how it is sent, and which failures are final.

The Message-ID is derived from (post, subscriber), so every attempt to send the same
notification produces the same Message-ID. Receiving systems that drop repeated Message-IDs can
then discard the duplicate that the one unguarded window (see ``email_worker``) could produce.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from html import escape

from examples.blog.db import Post, Subscriber
from examples.blog.links import notification_link
from examples.blog.settings import Settings

SMTP_TIMEOUT_SECONDS = 10.0


def message_id(settings: Settings, post_id: int, subscriber_id: int) -> str:
    domain = settings.mail_from.rpartition("@")[2] or "localhost"
    return f"<post-{post_id}.sub-{subscriber_id}@{domain}>"


def compose(settings: Settings, post: Post, subscriber: Subscriber) -> EmailMessage:
    """The notification about ``post`` for ``subscriber``: plain text and HTML, one link each."""
    link = notification_link(settings.public_url, settings.link_secret, post.id, subscriber.id)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = subscriber.email
    message["Subject"] = f"New post: {post.title}"
    message["Message-ID"] = message_id(settings, post.id, subscriber.id)
    message.set_content(f"A new post is out: {post.title}\n\nRead it here: {link}\n")
    message.add_alternative(
        f'<p>A new post is out: <a href="{escape(link)}">{escape(post.title)}</a></p>\n',
        subtype="html",
    )
    return message


def send(settings: Settings, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server; returns once the server accepted it."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        smtp.send_message(message)


def is_permanent(error: Exception) -> bool:
    """True for refusals that no retry can fix: a 5xx reply, or every recipient refused."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False
